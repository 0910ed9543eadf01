"""`pokemon-bot tokens` and `pokemon-bot generate`, run for real in a subprocess (`python -m bot`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference"
TOKENS = json.loads((REFERENCE / "tokens.json").read_text("utf-8"))
CASES = json.loads((REFERENCE / "images" / "cases.json").read_text("utf-8"))


def run_cli(
    *args: str, cwd: Path, timeout: float = 120, **settings: str
) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` in `cwd` (so no developer .env is read), offline, with a bare cache;
    `settings` are POKEMON_ variables to set."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(cwd / "hf-home"),
    }
    for name in list(env):
        if name.startswith("POKEMON_"):
            del env[name]
    env.update(settings)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], command: str) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"pokemon-bot {command}: ")
    return lines[0]


# -- tokens ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", [TOKENS[5], TOKENS[9], TOKENS[-1]], ids=["latin", "mask", "long"])
def test_tokens_prints_exactly_the_reference_ids_as_json(tiny_model, tmp_path, case):
    done = run_cli("tokens", case["prompt"], "--model", str(tiny_model), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert list(printed) == ["ids", "count", "truncated"]
    assert printed["ids"] == case["input_ids"]
    assert printed["truncated"] is (printed["count"] > 77)
    assert done.stdout.count("\n") == 1


def imports_of(argv: list[str], cwd: Path, *modules: str) -> tuple[list[bool], int]:
    """Run `bot.cli.main(argv)` in a fresh interpreter: whether each of `modules` was imported,
    and the exit status it returned."""
    code = (
        "import sys; from bot.cli import main; "
        f"rc = main({argv!r}); "
        f"print(*[m in sys.modules for m in {list(modules)!r}], rc)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    *loaded, rc = done.stdout.splitlines()[-1].split()
    return [flag == "True" for flag in loaded], int(rc)


def test_tokens_loads_only_the_tokenizer_not_torch(tiny_model, tmp_path):
    argv = ["tokens", "漫画の鳥", "--model", str(tiny_model)]
    assert imports_of(argv, tmp_path, "torch", "diffusers") == ([False, False], 0)


def test_tokens_with_missing_model_folder_is_one_line_exit_2(tmp_path):
    done = run_cli("tokens", "漫画の鳥", "--model", str(tmp_path / "missing"), cwd=tmp_path)
    assert "does not exist" in assert_one_line_error(done, "tokens")


# -- generate --------------------------------------------------------------------------------


def test_generate_writes_the_reference_image_and_prints_seed_and_time(tiny_model, tmp_path):
    case = CASES[1]
    out = tmp_path / "out.png"
    done = run_cli(
        "generate", case["prompt"],
        "-o", str(out),
        "--model", str(tiny_model),
        "--device", "cpu",
        "--seed", str(case["seed"]),
        "--steps", str(case["steps"]),
        "--guidance", str(case["guidance"]),
        "--negative", case["negative_prompt"],
        "--height", str(case["height"]),
        "--width", str(case["width"]),
        "--scheduler", "lms",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    image = np.asarray(Image.open(out), dtype=np.float64)
    expected = np.load(REFERENCE / "images" / "case1.npy") * 255.0
    assert np.abs(image - expected).max() <= 2
    assert f"seed {case['seed']}" in done.stdout
    assert "s (model load" in done.stdout
    assert f"{case['steps']}/{case['steps']} steps" in done.stderr  # the progress bar


def test_generate_without_seed_picks_one_prints_it_and_names_the_file_after_it(
    tiny_model, tmp_path
):
    done = run_cli(
        "generate", "漫画の鳥", "--model", str(tiny_model), "--steps", "1",
        "--height", "64", "--width", "64", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = list(tmp_path.glob("pokemon-*.png"))
    assert len(written) == 1
    seed = written[0].stem.removeprefix("pokemon-")
    assert f"seed {seed}," in done.stdout
    assert Image.open(written[0]).size == (64, 64)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--height", "65"], "--height must be a multiple of 8"),
        (["--width", "1000000"], "--width must be a multiple of 8"),
        (["--steps", "0"], "--steps must be between 1 and 150"),
        (["--guidance", "0.5"], "--guidance must be between 1 and 20"),
        (["--seed", "-1"], "--seed must be between 0 and 4294967295"),
        (["-o", "no/such/folder/x.png"], "folder no/such/folder does not exist"),
        (["-o", "picture.gif"], "cannot write picture.gif: use a .png, .jpg or .webp file name"),
        (["-o", "picture"], "use a .png, .jpg or .webp file name (not no extension)"),
    ],
)
def test_generate_bad_option_is_one_line_exit_2(tiny_model, tmp_path, args, message):
    done = run_cli("generate", "漫画の鳥", "--model", str(tiny_model), *args, cwd=tmp_path)
    assert message in assert_one_line_error(done, "generate")


def test_generate_with_missing_model_folder_is_one_line_exit_2(tmp_path):
    done = run_cli("generate", "漫画の鳥", "--model", str(tmp_path / "missing"), cwd=tmp_path)
    assert "does not exist" in assert_one_line_error(done, "generate")


def test_generate_with_empty_prompt_is_one_line_exit_2(tiny_model, tmp_path):
    done = run_cli("generate", "  ", "--model", str(tiny_model), cwd=tmp_path)
    assert "the prompt is empty" in assert_one_line_error(done, "generate")


def test_generate_refuses_to_overwrite_without_force(tiny_model, tmp_path):
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    args = ["generate", "漫画の鳥", "--model", str(tiny_model), "--steps", "1", "-o", str(out)]
    done = run_cli(*args, cwd=tmp_path)
    assert f"{out} already exists; choose another name or pass --force" in assert_one_line_error(
        done, "generate"
    )
    assert out.read_bytes() == b"keep me"
    done = run_cli(*args, "--force", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert Image.open(out).format == "PNG"


@pytest.mark.parametrize(
    ("name", "kind"), [("x.jpg", "JPEG"), ("x.JPEG", "JPEG"), ("x.webp", "WEBP")]
)
def test_generate_writes_the_format_the_extension_names(tiny_model, tmp_path, name, kind):
    out = tmp_path / name
    done = run_cli(
        "generate", "漫画の鳥", "--model", str(tiny_model), "--steps", "1", "--seed", "1",
        "-o", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with Image.open(out) as image:
        assert image.format == kind
        assert image.size == (64, 64)


def test_generate_without_a_size_uses_the_models_native_size(tiny_model, tmp_path):
    # The tiny checkpoint's UNet samples 8² latents and its VAE scales by 8: 64² (the real
    # model: 64² latents, 512²), not POKEMON_SIZE's default of 512, which takes minutes here.
    from generation.loader import native_size

    assert native_size(tiny_model) == 64
    done = run_cli(
        "generate", "漫画の鳥", "--model", str(tiny_model), "--steps", "1", "-o", "a.png",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "a.png").size == (64, 64)
    done = run_cli(
        "generate", "漫画の鳥", "--model", str(tiny_model), "--steps", "1", "-o", "b.png",
        cwd=tmp_path, POKEMON_SIZE="72",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "b.png").size == (72, 72)


def test_native_size_of_the_full_sd1x_layout_is_512():
    from generation.loader import native_size

    assert native_size(ROOT / "bench" / "sd1x-config") == 512
