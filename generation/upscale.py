"""The Upscaler: one loaded Real-ESRGAN network that makes pictures 4x larger (512² → 2048²).

Held like the Engine: loaded once (`load_upscaler`), then called from one thread at a time (the
generation worker thread, or the command line). `Upscaler.upscale` takes a batch of pictures
(encoded bytes or PIL images) and returns, per picture, an `UpscaledImage` or the
`GenerationError` that picture met, as `Engine.generate` does:

1. each source is checked (PNG/JPEG/WebP, at most `MAX_SOURCE_PIXELS`) and decoded to RGB;
2. it runs through the network in tiles when memory asks for it: on the CPU above `CPU_TILE`²
   input pixels; on CUDA whole first, then smaller tiles each time CUDA runs out of memory.
   Each tile is cut with `TILE_PAD` pixels of its neighbours around it and only its own part of
   the output is kept, so tiles meet without seams. Between tiles, `is_cancelled(i)` is asked
   and `on_tile(done, total)` told;
3. the result keeps the source's `parameters` text with the upscale step added, and is encoded
   as PNG, or lossless WebP / JPEG when the PNG would pass Discord's limit
   (`generation.upscale_encode`).

fp16 weights on CUDA, float32 on the CPU. Out of memory even at the smallest tile raises
`OutOfMemoryError` for the call (the worker stays healthy); another CUDA error raises
`FatalDeviceError`.
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generation.errors import (
    BadImageError,
    FatalDeviceError,
    GenerationError,
    JobCancelledError,
    OutOfMemoryError,
    one_line,
)
from generation.images import InputImageTooLargeError, check_image_bytes, decode_image
from generation.pipeline import (  # the Engine's own hooks, shared
    _free_cuda_cache,  # pyright: ignore[reportPrivateUsage]
    _is_device_error,  # pyright: ignore[reportPrivateUsage]
    _safe_call,  # pyright: ignore[reportPrivateUsage]
)
from generation.pnginfo import with_upscale
from generation.upscale_encode import (
    DISCORD_FILE_LIMIT,
    EXTENSIONS,
    ImageFormat,
    encode_within,
    read_parameters,
)
from generation.upscale_weights import UpscalerLoadError, UpscalerSource, parse_upscaler

if TYPE_CHECKING:
    import torch
    from PIL import Image
    from torch import nn

    from generation.upscale_arch import NetworkShape

log = logging.getLogger(__name__)

MAX_SOURCE_PIXELS = 1024 * 1024  # the largest picture the bot draws; 4x gives 4096²
CPU_TILE = 256  # input pixels per tile side on the CPU (about 1 GB of float32 activations)
TILE_PAD = 16  # input pixels of context cut around each tile, dropped from its output
CUDA_TILES: tuple[int | None, ...] = (None, 512, 256, 128, 64)  # whole first, then smaller

OnTile = Callable[[int, int], None]  # (tiles done, tiles in all) over the whole batch
IsCancelled = Callable[[int], bool]  # asked with the picture's index in the batch
Source = bytes | Any  # encoded bytes, or a PIL image


class UpscaleSourceTooLargeError(InputImageTooLargeError):
    """The picture is over `MAX_SOURCE_PIXELS`: an already upscaled one, say."""

    code = "upscale_source_too_large"


@dataclass(frozen=True, slots=True)
class UpscaledImage:
    """One upscaled picture, encoded (see `format`), and how it was made."""

    data: bytes
    format: ImageFormat  # png, or webp / jpeg when the PNG was over the limit
    width: int
    height: int
    source_width: int
    source_height: int
    parameters: str  # the text it carries (the source's, plus the upscale step)
    png_bytes: int  # the size the PNG was (over the limit when `format` is not png)
    quality: int | None = None  # the JPEG quality, for a jpeg
    tiles: int = 1
    tile_size: int | None = None  # input pixels per tile side; None: the picture in one piece
    timings: dict[str, float] = field(default_factory=dict[str, float])

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def tile_boxes(height: int, width: int, tile: int | None) -> list[tuple[int, int, int, int]]:
    """(top, bottom, left, right) of each tile, in rows; one box for the whole when `tile` is None."""
    if tile is None or (height <= tile and width <= tile):
        return [(0, height, 0, width)]
    return [
        (top, min(top + tile, height), left, min(left + tile, width))
        for top in range(0, height, tile)
        for left in range(0, width, tile)
    ]


class Upscaler:
    """A loaded network on its device. Not thread-safe: one caller at a time."""

    def __init__(
        self,
        network: nn.Module,
        shape: NetworkShape,
        *,
        name: str,
        device: str,
        dtype: str,
        path: Path | None = None,
    ) -> None:
        self.network = network
        self.shape = shape
        self.name = name
        self.device = device
        self.dtype = dtype
        self.path = path

    @property
    def scale(self) -> int:
        return self.shape.scale

    def upscale(
        self,
        images: Sequence[Source],
        *,
        on_tile: OnTile | None = None,
        is_cancelled: IsCancelled | None = None,
        tile: int | str | None = "auto",
        limit: int = DISCORD_FILE_LIMIT,
    ) -> list[UpscaledImage | GenerationError]:
        """Each picture 4x larger, or the error it met (bad source, cancelled, too large).

        `tile`: "auto" (the device's policy), None (never tile) or input pixels per side.
        `limit`: the most bytes one encoded picture may have (Discord's 10 MB by default).
        """
        if isinstance(tile, str) and tile != "auto":
            raise ValueError(f"tile must be 'auto', None or a positive int, not {tile!r}")
        if isinstance(tile, int) and tile < 8:
            raise ValueError(f"tile must be at least 8 pixels, not {tile}")
        progress = _Progress(on_tile)
        sources: list[tuple[Image.Image, str | None] | GenerationError] = []
        decode_s: list[float] = []
        for source in images:
            started = time.perf_counter()
            sources.append(_open_source(source))
            decode_s.append(time.perf_counter() - started)
        for entry in sources:
            if not isinstance(entry, GenerationError):
                progress.plan(len(tile_boxes(entry[0].height, entry[0].width, self._first(tile))))
        results: list[UpscaledImage | GenerationError] = []
        for index, entry in enumerate(sources):
            if isinstance(entry, GenerationError):
                results.append(entry)
                continue
            image, parameters = entry
            try:
                results.append(
                    self._one(
                        index=index,
                        image=image,
                        parameters=parameters,
                        tile=tile,
                        progress=progress,
                        is_cancelled=is_cancelled,
                        limit=limit,
                    )
                )
            except (OutOfMemoryError, FatalDeviceError):
                raise
            except GenerationError as exc:  # cancelled, or came out broken: this picture only
                results.append(exc)
                progress.drop_current()
            else:
                last = results[-1]
                if isinstance(last, UpscaledImage):
                    last.timings["decode"] = decode_s[index]
        return results

    # -- one picture ----------------------------------------------------------------------------

    def _first(self, tile: int | str | None) -> int | None:
        """The tile size the first attempt uses."""
        if tile != "auto":
            return tile if isinstance(tile, int) else None
        return CUDA_TILES[0] if self.device.startswith("cuda") else CPU_TILE

    def _one(
        self,
        *,
        index: int,
        image: Image.Image,
        parameters: str | None,
        tile: int | str | None,
        progress: _Progress,
        is_cancelled: IsCancelled | None,
        limit: int,
    ) -> UpscaledImage:
        import numpy as np
        import torch
        from PIL import Image

        def cancelled() -> bool:
            return is_cancelled is not None and bool(_safe_call(is_cancelled, index))

        if cancelled():
            raise JobCancelledError("cancelled before it was upscaled")
        timings: dict[str, float] = {}
        started = time.perf_counter()
        pixels = torch.as_tensor(np.array(image.convert("RGB"), dtype=np.uint8))
        chw = pixels.permute(2, 0, 1).unsqueeze(0)
        if tile == "auto" and self.device.startswith("cuda"):
            sizes: tuple[int | None, ...] = CUDA_TILES
        else:
            sizes = (self._first(tile),)
        out: torch.Tensor | None = None
        used: int | None = None
        for attempt, size in enumerate(sizes):
            if attempt:
                progress.replan(len(tile_boxes(image.height, image.width, size)))
            try:
                out = self._run(chw, size, progress, cancelled)
                used = size
                break
            except torch.cuda.OutOfMemoryError as exc:
                _free_cuda_cache()
                log.info(
                    "upscale of %dx%d ran out of GPU memory at tile %s; %s",
                    image.width,
                    image.height,
                    size or "whole",
                    "trying smaller tiles" if attempt + 1 < len(sizes) else "giving up",
                )
                if attempt + 1 == len(sizes):
                    raise OutOfMemoryError(
                        f"out of GPU memory upscaling {image.width}x{image.height} even in "
                        f"tiles of {size or 'the whole picture'}: {one_line(exc)}"
                    ) from exc
            except (RuntimeError, ValueError) as exc:
                if _is_device_error(exc, self.device):
                    raise FatalDeviceError(f"CUDA error: {one_line(exc)}") from exc
                raise
        assert out is not None
        timings["upscale"] = time.perf_counter() - started

        started = time.perf_counter()
        result = Image.fromarray(out.permute(1, 2, 0).numpy())
        text = with_upscale(parameters, self.name, self.scale)
        encoded = encode_within(result, text, limit=limit)
        timings["encode"] = time.perf_counter() - started
        if encoded.fallback:
            log.info(
                "upscaled PNG is %.1f MB, over %.1f MB: sent as %s",
                encoded.png_bytes / 1e6,
                limit / 1e6,
                encoded.format if encoded.quality is None else f"JPEG q{encoded.quality}",
            )
        return UpscaledImage(
            data=encoded.data,
            format=encoded.format,
            width=result.width,
            height=result.height,
            source_width=image.width,
            source_height=image.height,
            parameters=text,
            png_bytes=encoded.png_bytes,
            quality=encoded.quality,
            tiles=len(tile_boxes(image.height, image.width, used)),
            tile_size=used if used is not None and used < max(image.height, image.width) else None,
            timings=timings,
        )

    def _run(
        self,
        chw: torch.Tensor,
        tile: int | None,
        progress: _Progress,
        cancelled: Callable[[], bool],
    ) -> torch.Tensor:
        """The network over `chw` (1x3xHxW uint8), tile by tile → 3x(4H)x(4W) uint8 on the CPU."""
        import torch

        _, _, height, width = chw.shape
        scale = self.scale
        out = torch.empty((3, height * scale, width * scale), dtype=torch.uint8)
        parameter = next(self.network.parameters())
        boxes = tile_boxes(height, width, tile)
        pad = TILE_PAD if len(boxes) > 1 else 0
        for top, bottom, left, right in boxes:
            if cancelled():
                raise JobCancelledError("cancelled while upscaling")
            # The tile with `pad` pixels of its neighbours (fewer at the picture's edges).
            in_top, in_left = max(top - pad, 0), max(left - pad, 0)
            in_bottom, in_right = min(bottom + pad, height), min(right + pad, width)
            piece = chw[:, :, in_top:in_bottom, in_left:in_right]
            x = piece.to(device=parameter.device, dtype=parameter.dtype) / 255.0
            with torch.inference_mode():
                y = self.network(x)
                if not bool(torch.isfinite(y).all()):
                    raise BadImageError("the upscaled picture came out with NaN values")
                y = (y.float().clamp_(0, 1) * 255.0).round_().to(torch.uint8).cpu()[0]
            # Keep only the tile's own part of the output.
            y0, x0 = (top - in_top) * scale, (left - in_left) * scale
            h, w = (bottom - top) * scale, (right - left) * scale
            out[:, top * scale : bottom * scale, left * scale : right * scale] = y[
                :, y0 : y0 + h, x0 : x0 + w
            ]
            progress.step()
        return out


class _Progress:
    """Tiles done and planned over a batch; a picture's plan can change (smaller tiles)."""

    def __init__(self, on_tile: OnTile | None) -> None:
        self.on_tile = on_tile
        self.total = 0
        self.done = 0
        self._current_planned: list[int] = []  # per planned picture, in order
        self._current = 0  # index into _current_planned of the picture running
        self._current_done = 0

    def plan(self, tiles: int) -> None:
        self._current_planned.append(tiles)
        self.total += tiles

    def replan(self, tiles: int) -> None:
        """The running picture starts over with `tiles` tiles."""
        planned = self._current_planned[self._current]
        self.total += tiles - planned
        self.done -= self._current_done
        self._current_planned[self._current] = tiles
        self._current_done = 0

    def step(self) -> None:
        self.done += 1
        self._current_done += 1
        if self.on_tile is not None:
            _safe_call(self.on_tile, self.done, self.total)
        if self._current_done == self._current_planned[self._current]:
            self._current += 1
            self._current_done = 0

    def drop_current(self) -> None:
        """The running picture was cancelled: its remaining tiles will not run."""
        if self._current < len(self._current_planned):
            self.total -= self._current_planned[self._current] - self._current_done
            self._current += 1
            self._current_done = 0


def _open_source(source: Source) -> tuple[Image.Image, str | None] | GenerationError:
    """The picture as RGB and the parameters it carries, or why it cannot be upscaled."""
    from PIL import Image

    try:
        if isinstance(source, bytes):
            data = source
            _, width, height = check_image_bytes(data)
            check_source_size(width, height)
            with Image.open(io.BytesIO(data)) as opened:
                opened.load()
                parameters = read_parameters(opened)
            return decode_image(data, width, height), parameters
        image: Image.Image = source
        check_source_size(image.width, image.height)
        return image.convert("RGB"), read_parameters(image)
    except GenerationError as exc:
        return exc


def check_source_size(width: int, height: int) -> None:
    """Raise `UpscaleSourceTooLargeError` for a picture over `MAX_SOURCE_PIXELS`."""
    if width * height > MAX_SOURCE_PIXELS:
        side = math.isqrt(MAX_SOURCE_PIXELS)
        raise UpscaleSourceTooLargeError(
            f"the picture is {width}x{height}; the largest that can be upscaled is "
            f"{MAX_SOURCE_PIXELS:,} pixels ({side}x{side})"
        )


def load_upscaler(source: UpscalerSource | str, *, device: str = "auto") -> Upscaler:
    """Resolve (download once, check) and load the upscaler `source` names onto `device`.

    `source` is a `POKEMON_UPSCALER` value or a parsed source. Raises `ModelLoadError`
    (`UpscalerLoadError`, `NotAnUpscalerError`, ...) with one line for the operator.
    """
    from generation.loader import probe_device
    from generation.upscale_arch import load_network
    from generation.upscale_weights import resolve_weights

    parsed = parse_upscaler(source) if isinstance(source, str) else source
    if parsed is None:
        raise UpscalerLoadError("the upscaler is off (POKEMON_UPSCALER=off)")
    target = probe_device(device)  # a bad or missing device fails before anything is read
    started = time.monotonic()
    path = resolve_weights(parsed)
    network, shape = load_network(path)
    if target.device.startswith("cuda"):
        network = network.half()
    network = network.to(target.device)
    upscaler = Upscaler(
        network, shape, name=path.stem, device=target.device, dtype=target.dtype, path=path
    )
    log.info(
        "loaded upscaler %s (%dx, %d blocks) on %s (%s) in %.1fs",
        upscaler.name,
        shape.scale,
        shape.blocks,
        target.device,
        target.dtype,
        time.monotonic() - started,
    )
    return upscaler
