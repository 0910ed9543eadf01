"""Upscale jobs for the generation worker: the loaded `Upscaler` behind the engine's call.

The worker runs each batch through one runner, chosen by the requests' kind (they share a
batch key, so a batch holds one kind): the engine draws, `UpscaleRunner` upscales. Like
`Engine.generate`, `UpscaleRunner.generate` takes the batch's requests and answers one entry
per picture, a `GeneratedImage` or the `GenerationError` that picture met; `on_step(done,
total, None)` counts tiles (no latents to preview) and `is_cancelled(i)` is asked between them. An upscale request carries
its source picture as `init_image` and asks for one picture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from generation.errors import BadImageError, GenerationError
from generation.types import GeneratedImage, GenerationRequest

if TYPE_CHECKING:
    from generation.preview import Peek
    from generation.upscale import Upscaler


class UpscaleRunner:
    """Runs upscale requests on one loaded `Upscaler` (from the worker thread only)."""

    def __init__(self, upscaler: Upscaler) -> None:
        self.upscaler = upscaler
        self.model = upscaler.name  # shown under the picture, as the engine's model is
        self.device = upscaler.device
        self.dtype = upscaler.dtype

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        on_step: Callable[[int, int, Peek | None], None] | None = None,
        is_cancelled: Callable[[int], bool] | None = None,
    ) -> list[GeneratedImage | GenerationError]:
        from generation.upscale import UpscaledImage

        if any(request.init_image is None or request.count != 1 for request in requests):
            raise BadImageError("an upscale needs one source picture and asks for one picture")
        sources = [request.init_image for request in requests if request.init_image is not None]
        on_tile = None if on_step is None else (lambda done, total: on_step(done, total, None))
        upscaled = self.upscaler.upscale(sources, on_tile=on_tile, is_cancelled=is_cancelled)
        answers: list[GeneratedImage | GenerationError] = []
        for request, entry in zip(requests, upscaled, strict=True):
            if not isinstance(entry, UpscaledImage):
                answers.append(entry)
                continue
            answers.append(
                GeneratedImage(
                    png=entry.data,
                    seed=request.seed,
                    steps=entry.tiles,
                    width=entry.width,
                    height=entry.height,
                    token_count=0,
                    truncated=False,
                    timings=entry.timings,
                    format=entry.format,
                )
            )
        return answers


def load_upscale_runner(source: str, *, device: str = "auto") -> UpscaleRunner:
    """Load the upscaler `source` names (a `POKEMON_UPSCALER` value) for the worker; raises
    `ModelLoadError` (`UpscalerLoadError`) with one line for the operator."""
    from generation.upscale import load_upscaler

    return UpscaleRunner(load_upscaler(source, device=device))
