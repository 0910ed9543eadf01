"""`pokemon-bot upscale`, run for real in a subprocess (`python -m bot`), with the tiny upscaler."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.test_cli_generation import assert_one_line_error, imports_of, run_cli

PARAMETERS = "漫画の鳥\nSteps: 25, Seed: 3, Size: 40x32"


def write_png(path: Path, size: tuple[int, int] = (40, 32), parameters: str = PARAMETERS) -> Path:
    info = PngInfo()
    info.add_text("parameters", parameters)
    Image.new("RGB", size, (250, 120, 30)).save(path, pnginfo=info)
    return path


def test_upscale_writes_a_4x_png_that_keeps_and_extends_the_parameters(tiny_upscaler, tmp_path):
    source = write_png(tmp_path / "in.png")
    done = run_cli(
        "upscale", str(source), "-o", str(tmp_path / "out.png"), "--device", "cpu",
        cwd=tmp_path, POKEMON_UPSCALER=str(tiny_upscaler),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "out.png") as image:
        assert image.size == (160, 128)
        assert image.info["parameters"] == (
            f"{PARAMETERS}, Postprocess upscale by: 4, Postprocess upscaler: tiny-x4"
        )
    assert done.stdout.startswith(f"wrote {tmp_path / 'out.png'}: 40x32 -> 160x128 with tiny-x4")
    assert "Traceback" not in done.stderr


def test_upscaler_option_wins_and_the_default_output_is_beside_the_input(tiny_upscaler, tmp_path):
    source = write_png(tmp_path / "pic.png")
    done = run_cli(
        "upscale", str(source), "--upscaler", str(tiny_upscaler), "--tile", "16",
        cwd=tmp_path, POKEMON_UPSCALER="off", POKEMON_DEVICE="cpu",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "(6 tiles)" in done.stdout
    with Image.open(tmp_path / "pic-4x.png") as image:
        assert image.size == (160, 128)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p / "missing.png", "missing.png does not exist"),
        (lambda p: (p / "notes.png").write_text("hello") and p / "notes.png", "not a PNG, JPEG"),
        (
            lambda p: write_png(p / "big.png", size=(1100, 1000)),
            "the picture is 1100x1000; the largest that can be upscaled is 1,048,576 pixels",
        ),
    ],
    ids=["missing", "not-an-image", "too-big"],
)
def test_bad_input_is_one_line_and_exit_2(tiny_upscaler, tmp_path, make, expected):
    source = make(tmp_path)
    done = run_cli(
        "upscale", str(source), "-o", str(tmp_path / "out.png"),
        cwd=tmp_path, POKEMON_UPSCALER=str(tiny_upscaler), POKEMON_DEVICE="cpu",
    )  # fmt: skip
    line = assert_one_line_error(done, "upscale")
    assert expected in line
    assert not (tmp_path / "out.png").exists()


def test_weights_that_are_no_upscaler_are_one_line(tmp_path):
    (tmp_path / "w.pth").write_bytes(b"not torch")
    source = write_png(tmp_path / "in.png")
    done = run_cli(
        "upscale", str(source), "--upscaler", str(tmp_path / "w.pth"), "--device", "cpu",
        cwd=tmp_path,
    )  # fmt: skip
    assert "not a readable weights file" in assert_one_line_error(done, "upscale")


def test_default_weights_offline_and_not_cached_is_one_line(tmp_path):
    source = write_png(tmp_path / "in.png")
    done = run_cli("upscale", str(source), "--device", "cpu", cwd=tmp_path)
    line = assert_one_line_error(done, "upscale")
    assert "RealESRGAN_x4plus_anime_6B.pth are not in the Hugging Face cache" in line
    assert "HF_HUB_OFFLINE is set" in line


def test_off_is_one_line(tmp_path):
    source = write_png(tmp_path / "in.png")
    done = run_cli("upscale", str(source), cwd=tmp_path, POKEMON_UPSCALER="off")
    assert "the upscaler is off" in assert_one_line_error(done, "upscale")


def test_an_existing_output_is_not_overwritten_without_force(tiny_upscaler, tmp_path):
    source = write_png(tmp_path / "in.png")
    (tmp_path / "out.png").write_bytes(b"keep")
    done = run_cli(
        "upscale", str(source), "-o", str(tmp_path / "out.png"),
        cwd=tmp_path, POKEMON_UPSCALER=str(tiny_upscaler),
    )  # fmt: skip
    assert "already exists" in assert_one_line_error(done, "upscale")
    assert (tmp_path / "out.png").read_bytes() == b"keep"


def test_bad_input_is_refused_before_torch_is_imported(tmp_path):
    argv = ["upscale", str(tmp_path / "missing.png")]
    assert imports_of(argv, tmp_path, "torch") == ([False], 2)
