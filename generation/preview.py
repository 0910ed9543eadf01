"""A live preview of a picture being drawn, made from its latents without the VAE.

The standard SD 1.x approximation (the factors ComfyUI and other UIs use for their "latent2rgb"
previews): each of the four latent channels contributes linearly to R, G and B, so the 64×64
latents of a 512² picture become a 64×64 colour sketch in a fraction of a millisecond. It is
decoded on the generation side (the worker thread or a remote worker), never on the bot's
event loop, and encoded as a small JPEG (a few KB) that a progress edit can carry.

A job of several pictures gets one preview with its pictures side by side.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

# Rows: latent channels 1-4; columns: their weight in R, G, B (SD 1.x, scaled latents).
SD1_LATENT_RGB: tuple[tuple[float, float, float], ...] = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)
PREVIEW_SIDE = 128  # pixels of the longer side of one picture's preview
PREVIEW_QUALITY = 70  # JPEG quality: a sketch, not the picture
PREVIEW_MAX_BYTES = 64 * 1024  # a preview larger than this is not sent (previews are optional)


class PreviewError(Exception):
    """A preview could not be made: the job goes on without it."""


def latents_to_rgb(latents: Any) -> Any:
    """(n, 4, h, w) latents → (n, h, w, 3) uint8 tensor on the CPU."""
    import torch

    if latents.ndim != 4 or latents.shape[1] != len(SD1_LATENT_RGB):
        raise PreviewError(f"expected (n, 4, h, w) latents, got {tuple(latents.shape)}")
    factors = torch.tensor(SD1_LATENT_RGB, dtype=torch.float32)
    rgb = torch.einsum("nchw,cr->nhwr", latents.detach().float().cpu(), factors)
    return ((rgb + 1.0) / 2.0).clamp(0, 1).mul(255).round().to(torch.uint8)


def preview_jpeg(
    latents: Any, *, side: int = PREVIEW_SIDE, quality: int = PREVIEW_QUALITY
) -> bytes:
    """One JPEG showing every picture in `latents` side by side, each `side` pixels on its
    longer side. Raises PreviewError when the latents or the encoder fail."""
    from PIL import Image

    try:
        pictures = [Image.fromarray(array.numpy(), "RGB") for array in latents_to_rgb(latents)]
    except PreviewError:
        raise
    except Exception as exc:  # a tensor PIL cannot take: no preview, never a failed job
        raise PreviewError(str(exc)) from exc
    scaled = [_fit(picture, side) for picture in pictures]
    sheet = Image.new("RGB", (sum(p.width for p in scaled), max(p.height for p in scaled)))
    left = 0
    for picture in scaled:
        sheet.paste(picture, (left, 0))
        left += picture.width
    buffer = io.BytesIO()
    try:
        sheet.save(buffer, "JPEG", quality=quality)
    except OSError as exc:
        raise PreviewError(str(exc)) from exc
    return buffer.getvalue()


def _fit(picture: Any, side: int) -> Any:
    from PIL import Image

    scale = side / max(picture.width, picture.height)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    return picture.resize(size, Image.Resampling.BILINEAR)


def members_preview(latents: Any, spans: Sequence[tuple[int, int]]) -> list[bytes | None]:
    """A preview per job of a batch: `spans[i]` is job i's (start, stop) rows of `latents`.
    A job whose preview fails gets None (it goes on without one)."""
    previews: list[bytes | None] = []
    for start, stop in spans:
        try:
            data = preview_jpeg(latents[start:stop])
        except PreviewError:
            data = None
        previews.append(data if data is not None and len(data) <= PREVIEW_MAX_BYTES else None)
    return previews
