"""The upscaler on the CPU: a tiny random-weight RRDBNet saved to a file and loaded through the
real path (POKEMON_UPSCALER → parse → resolve → checksum → network), run on small pictures."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from generation.errors import JobCancelledError, ModelLoadError
from generation.images import BadInputImageError, InputImageTypeError
from generation.upscale import (
    CPU_TILE,
    MAX_SOURCE_PIXELS,
    UpscaledImage,
    Upscaler,
    UpscaleSourceTooLargeError,
    load_upscaler,
    tile_boxes,
)
from generation.upscale_arch import NetworkShape, NotAnUpscalerError, load_network
from generation.upscale_encode import read_parameters
from generation.upscale_weights import UpscalerLoadError, parse_upscaler
from tests.generation.tinyupscaler import TINY_SHAPE, save_tiny_upscaler, tiny_state_dict

PARAMETERS = "ピカチュウ、かわいい\nSteps: 25, Sampler: DPM++ 2M Karras, Seed: 7, Size: 48x40"


def picture(width: int = 48, height: int = 40, seed: int = 0) -> Image.Image:
    """A smooth picture with some texture, as a drawing is (not pure noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], -1)
    noisy = base + rng.normal(0, 12, base.shape)
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8))


def png_bytes(image: Image.Image, parameters: str | None = PARAMETERS) -> bytes:
    info = PngInfo()
    if parameters is not None:
        info.add_text("parameters", parameters)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def pixels(result: UpscaledImage) -> np.ndarray:
    with Image.open(io.BytesIO(result.data)) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


@pytest.fixture(scope="module")
def upscaler(tiny_upscaler: Path) -> Upscaler:
    return load_upscaler(str(tiny_upscaler), device="cpu")


def test_upscales_4x_in_each_side_and_keeps_and_extends_the_parameters(upscaler, tiny_upscaler):
    [result] = upscaler.upscale([png_bytes(picture(48, 40))])
    assert isinstance(result, UpscaledImage), result
    assert (result.width, result.height) == (192, 160)
    assert (result.source_width, result.source_height) == (48, 40)
    assert result.format == "png"
    with Image.open(io.BytesIO(result.data)) as image:
        assert image.size == (192, 160)
        carried = image.info["parameters"]
    assert carried == result.parameters
    assert carried == (
        f"{PARAMETERS}, Postprocess upscale by: 4, Postprocess upscaler: {tiny_upscaler.stem}"
    )
    assert set(result.timings) == {"decode", "upscale", "encode"}


def test_output_is_the_network_applied_to_the_picture(upscaler, tiny_upscaler):
    source = picture(24, 16)
    [result] = upscaler.upscale([source])
    assert isinstance(result, UpscaledImage)
    network, _ = load_network(tiny_upscaler)
    x = torch.from_numpy(np.array(source)).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        expected = (network(x).clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy()
    assert np.abs(pixels(result) - expected).max() <= 1


def test_a_source_without_parameters_gets_only_the_upscale_step(upscaler, tiny_upscaler):
    [result] = upscaler.upscale([png_bytes(picture(), parameters=None)])
    assert isinstance(result, UpscaledImage)
    assert result.parameters == (
        f"Postprocess upscale by: 4, Postprocess upscaler: {tiny_upscaler.stem}"
    )


def test_tiled_gives_the_same_pixels_as_whole(upscaler):
    source = png_bytes(picture(70, 52, seed=3))
    [whole] = upscaler.upscale([source], tile=None)
    [tiled] = upscaler.upscale([source], tile=24)
    assert isinstance(whole, UpscaledImage)
    assert isinstance(tiled, UpscaledImage)
    assert (whole.tiles, tiled.tiles) == (1, 9)
    assert tiled.tile_size == 24
    assert whole.tile_size is None
    assert np.abs(pixels(whole) - pixels(tiled)).max() <= 1


def test_cpu_tiles_a_picture_larger_than_one_tile_on_its_own(upscaler):
    [result] = upscaler.upscale([picture(CPU_TILE + 8, 40)])
    assert isinstance(result, UpscaledImage)
    assert (result.tiles, result.tile_size) == (2, CPU_TILE)
    assert (result.width, result.height) == ((CPU_TILE + 8) * 4, 160)


def test_tile_boxes_cover_the_picture_once():
    boxes = tile_boxes(50, 70, 32)
    covered = np.zeros((50, 70), dtype=int)
    for top, bottom, left, right in boxes:
        covered[top:bottom, left:right] += 1
    assert (covered == 1).all()
    assert tile_boxes(50, 70, None) == [(0, 50, 0, 70)]


def test_progress_counts_every_tile_of_the_batch_in_order(upscaler):
    seen: list[tuple[int, int]] = []
    results = upscaler.upscale(
        [picture(40, 40), picture(20, 20)], tile=16, on_tile=lambda d, t: seen.append((d, t))
    )
    assert all(isinstance(r, UpscaledImage) for r in results)
    assert seen == [(i, 13) for i in range(1, 14)]  # 3x3 tiles, then 2x2


def test_cancel_between_tiles_stops_that_picture_and_not_the_next(upscaler):
    cancel = threading.Event()
    seen: list[tuple[int, int]] = []

    def on_tile(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 2:
            cancel.set()

    results = upscaler.upscale(
        [picture(40, 40), picture(20, 20)],
        tile=16,
        on_tile=on_tile,
        is_cancelled=lambda index: index == 0 and cancel.is_set(),
    )
    assert isinstance(results[0], JobCancelledError)
    assert isinstance(results[1], UpscaledImage)
    # Two tiles of the first picture ran, then the second picture's four; the total shrank
    # by the seven tiles that never ran.
    assert [done for done, _ in seen] == [1, 2, 3, 4, 5, 6]
    assert seen[-1] == (6, 6)


def test_cancelled_before_it_starts_runs_no_tile(upscaler):
    seen: list[int] = []
    [result] = upscaler.upscale(
        [picture()], on_tile=lambda d, t: seen.append(d), is_cancelled=lambda _: True
    )
    assert isinstance(result, JobCancelledError)
    assert seen == []


def test_bad_sources_fail_alone_with_their_own_error(upscaler):
    big = Image.new("RGB", (1025, 1024), (200, 100, 50))
    results = upscaler.upscale([b"not a picture", png_bytes(big), png_bytes(picture())])
    assert isinstance(results[0], InputImageTypeError)
    assert isinstance(results[1], UpscaleSourceTooLargeError)
    assert isinstance(results[1], BadInputImageError)
    assert str(results[1]) == (
        f"the picture is 1025x1024; the largest that can be upscaled is "
        f"{MAX_SOURCE_PIXELS:,} pixels (1024x1024)"
    )
    assert isinstance(results[2], UpscaledImage)


def test_an_upscaled_picture_cannot_be_upscaled_again(upscaler):
    [first] = upscaler.upscale([picture(300, 260)], tile=None)
    assert isinstance(first, UpscaledImage)
    [again] = upscaler.upscale([first.data])
    assert isinstance(again, UpscaleSourceTooLargeError)


def test_over_the_limit_the_result_says_webp_and_keeps_the_parameters(upscaler):
    source = png_bytes(picture(64, 64, seed=5))
    [as_png] = upscaler.upscale([source])
    assert isinstance(as_png, UpscaledImage)
    assert as_png.format == "png"
    [as_webp] = upscaler.upscale([source], limit=len(as_png.data) - 1)
    assert isinstance(as_webp, UpscaledImage)
    assert as_webp.format == "webp"
    assert as_webp.png_bytes == len(as_png.data)
    assert len(as_webp.data) < len(as_png.data)
    assert (pixels(as_webp) == pixels(as_png)).all()  # lossless
    with Image.open(io.BytesIO(as_webp.data)) as image:
        assert image.format == "WEBP"
        assert read_parameters(image) == as_png.parameters


def test_a_bad_setting_value_is_one_clear_error():
    with pytest.raises(UpscalerLoadError, match="neither a local file or folder nor a Hub file"):
        parse_upscaler("not a path or hub file")
    assert parse_upscaler("off") is None
    assert parse_upscaler(" OFF ") is None


def test_missing_local_file_is_one_clear_error(tmp_path):
    with pytest.raises(UpscalerLoadError, match=r"upscaler weights .*nope\.pth do not exist"):
        load_upscaler(str(tmp_path / "nope.pth"), device="cpu")


def test_folder_with_one_weights_file_loads_it(tmp_path):
    save_tiny_upscaler(tmp_path / "weights" / "mine.safetensors")
    loaded = load_upscaler(str(tmp_path / "weights"), device="cpu")
    assert loaded.name == "mine"
    assert loaded.shape == TINY_SHAPE


def test_folder_with_two_weights_files_is_refused_naming_them(tmp_path):
    save_tiny_upscaler(tmp_path / "weights" / "a.pth")
    save_tiny_upscaler(tmp_path / "weights" / "b.pth")
    with pytest.raises(UpscalerLoadError, match=r"exactly one weights file.*a\.pth, b\.pth"):
        load_upscaler(str(tmp_path / "weights"), device="cpu")


def test_an_unwrapped_state_dict_loads_too(tmp_path):
    path = save_tiny_upscaler(tmp_path / "plain.pth", wrap=False)
    assert load_upscaler(str(path), device="cpu").shape == TINY_SHAPE


def test_a_2x_model_is_refused_as_not_4x(tmp_path):
    state = tiny_state_dict()
    state["conv_first.weight"] = torch.zeros(8, 12, 3, 3)  # BasicSR's x2 pixel-unshuffles first
    torch.save({"params_ema": state}, tmp_path / "x2.pth")
    with pytest.raises(NotAnUpscalerError, match="are a 2x model; a 4x RGB upscaler is needed"):
        load_upscaler(str(tmp_path / "x2.pth"), device="cpu")


def test_a_file_that_is_no_upscaler_is_refused(tmp_path):
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(NotAnUpscalerError, match="not a Real-ESRGAN RRDBNet image model"):
        load_upscaler(str(tmp_path / "other.pth"), device="cpu")
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(NotAnUpscalerError, match="not a readable weights file"):
        load_upscaler(str(tmp_path / "text.pth"), device="cpu")


def test_a_pickle_that_runs_code_is_not_loaded(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"params_ema": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(NotAnUpscalerError, match="not a readable weights file"):
        load_upscaler(str(tmp_path / "evil.pth"), device="cpu")


def test_the_real_architecture_shape_is_read_from_its_tensors(tmp_path):
    real = NetworkShape(in_channels=3, out_channels=3, features=64, blocks=6, growth=32)
    path = save_tiny_upscaler(tmp_path / "RealESRGAN_x4plus_anime_6B.pth", real)
    loaded = load_upscaler(str(path), device="cpu")
    assert loaded.shape == real
    assert loaded.name == "RealESRGAN_x4plus_anime_6B"
    assert sum(p.numel() for p in loaded.network.parameters()) == 4_467_779


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_line(tiny_upscaler):
    with pytest.raises(ModelLoadError, match="CUDA is not available"):
        load_upscaler(str(tiny_upscaler), device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_runs_fp16_and_matches_the_cpu_closely(upscaler, tiny_upscaler):
    on_gpu = load_upscaler(str(tiny_upscaler), device="cuda")
    assert on_gpu.dtype == "float16"
    assert next(on_gpu.network.parameters()).dtype == torch.float16
    source = png_bytes(picture(64, 48, seed=2))
    [gpu], [cpu] = on_gpu.upscale([source]), upscaler.upscale([source])
    assert isinstance(gpu, UpscaledImage)
    assert isinstance(cpu, UpscaledImage)
    assert (gpu.tiles, gpu.tile_size) == (1, None)  # whole on CUDA while memory allows
    assert np.abs(pixels(gpu) - pixels(cpu)).mean() <= 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tiled_matches_whole(tiny_upscaler):
    on_gpu = load_upscaler(str(tiny_upscaler), device="cuda")
    source = png_bytes(picture(70, 52, seed=3))
    [whole], [tiled] = on_gpu.upscale([source], tile=None), on_gpu.upscale([source], tile=24)
    assert isinstance(whole, UpscaledImage)
    assert isinstance(tiled, UpscaledImage)
    assert np.abs(pixels(whole) - pixels(tiled)).max() <= 2
