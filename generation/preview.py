"""A live preview of a picture being drawn, made from its latents without the VAE.

The standard SD 1.x approximation (the factors ComfyUI and other UIs use for their "latent2rgb"
previews): each of the four latent channels contributes linearly to R, G and B, so the 64×64
latents of a 512² picture become a 64×64 colour sketch in a fraction of a millisecond. It is
decoded on the generation side (the worker thread or a remote worker), never on the bot's
event loop, and encoded as a small JPEG (a few KB) that a progress edit can carry.

A job of several pictures gets one preview with its pictures side by side.

When: `BatchPreviews` paces them for one engine call. A job that draws faster than
`PREVIEW_START_SECONDS` never makes one (a GPU picture takes well under a second), later at
most one every `PREVIEW_INTERVAL_SECONDS` (the bot edits a job's message no more often), and
never at the last step (the picture itself follows). The latents are only read when one is due.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

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
PREVIEW_START_SECONDS = 2.0  # a job running shorter than this never makes a preview
# At most one preview per this many seconds: equal to the bot's edit interval
# (`bot.messaging.PROGRESS_INTERVAL`; a test keeps them in step), so no preview is made that
# no edit could carry.
PREVIEW_INTERVAL_SECONDS = 2.0


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


Peek = Callable[[], Any]  # the batch's current latents, one row per picture (engine-side)


@dataclass(frozen=True, slots=True)
class PreviewPacing:
    """When previews are made: none in a run's first `start_after` seconds, then at most one
    every `interval` seconds."""

    start_after: float = PREVIEW_START_SECONDS
    interval: float = PREVIEW_INTERVAL_SECONDS

    def __post_init__(self) -> None:
        if self.start_after < 0 or self.interval < 0:
            raise ValueError("preview start and interval must not be negative")


def count_spans(counts: Sequence[int]) -> list[tuple[int, int]]:
    """Each job's (start, stop) rows in a batch whose jobs have `counts` pictures, in order."""
    spans: list[tuple[int, int]] = []
    start = 0
    for count in counts:
        spans.append((start, start + count))
        start += count
    return spans


class BatchPreviews:
    """The previews of one engine call: `take` answers each job's preview at a step (None for
    all of them unless one is due), reading the latents through `peek` only then."""

    def __init__(self, pacing: PreviewPacing | None, counts: Sequence[int]) -> None:
        self.pacing = pacing
        self.spans = count_spans(counts)
        self._last: float | None = None
        self.made = 0  # previews made (one per due step, for every job of the batch)
        self.seconds = 0.0  # time spent reading latents, decoding and encoding them

    def due(self, step: int, total: int, elapsed: float) -> bool:
        pacing = self.pacing
        if pacing is None or step >= total or elapsed < pacing.start_after:
            return False
        return self._last is None or elapsed - self._last >= pacing.interval

    def take(self, step: int, total: int, elapsed: float, peek: Peek | None) -> list[bytes | None]:
        nothing: list[bytes | None] = [None] * len(self.spans)
        if peek is None or not self.due(step, total, elapsed):
            return nothing
        self._last = elapsed
        started = time.perf_counter()
        try:
            previews = members_preview(peek(), self.spans)
        except Exception as exc:  # an engine whose latents cannot be read: no preview
            log.debug("no preview at step %s: %s", step, exc)
            previews = nothing
        self.seconds += time.perf_counter() - started
        self.made += 1
        return previews
