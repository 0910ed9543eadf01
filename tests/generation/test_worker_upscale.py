"""Upscale jobs in the generation worker: the real thread, the real (tiny, random-weight)
upscaler loaded from a file, and `StepEngine` from test_worker for the drawings beside them."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from generation.errors import GenerationError, JobCancelledError, UpscalerOffError
from generation.types import UPSCALE, GeneratedImage, GenerationRequest, Progress
from generation.upscale_encode import read_parameters
from generation.upscale_job import UpscaleRunner, load_upscale_runner
from generation.worker import THREAD_NAME
from tests.generation import test_worker
from tests.generation.test_worker import StepEngine, error_of, req, result_of, start_blocker

# The same stand-in engine and worker factory as test_worker.py.
engine = test_worker.engine
make_worker = test_worker.make_worker


def png(width: int, height: int, colour: tuple[int, int, int], text: str | None = None) -> bytes:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if text is not None:
        info.add_text("parameters", text)
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def up(source: bytes, seed: int = 0) -> GenerationRequest:
    return GenerationRequest(prompt="", kind=UPSCALE, init_image=source, seed=seed, steps=1)


class RecordingRunner:
    """The real `UpscaleRunner`, recording each batch and the thread it ran on; `gate_after_first`
    holds the run after its first tile until `release()` (to cancel it mid-run)."""

    def __init__(self, runner: UpscaleRunner) -> None:
        self.runner = runner
        self.model = runner.model
        self.batches: list[list[int]] = []  # the seeds of each call
        self.threads: list[str] = []
        self.first_tile = threading.Event()
        self._gate = threading.Event()
        self._gate.set()

    def gate_after_first(self) -> None:
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        on_step: Callable[[int, int, Any], None] | None = None,
        is_cancelled: Callable[[int], bool] | None = None,
    ) -> list[GeneratedImage | GenerationError]:
        self.batches.append([r.seed for r in requests])
        self.threads.append(threading.current_thread().name)

        def step(done: int, total: int, peek: Any = None) -> None:
            if on_step is not None:
                on_step(done, total, peek)
            self.first_tile.set()
            self._gate.wait(10)

        return self.runner.generate(requests, on_step=step, is_cancelled=is_cancelled)


@pytest.fixture(scope="module")
def tiny_runner(tiny_upscaler: Path) -> UpscaleRunner:
    return load_upscale_runner(str(tiny_upscaler), device="cpu")


@pytest.fixture
def upscaler(tiny_runner: UpscaleRunner) -> RecordingRunner:
    return RecordingRunner(tiny_runner)


async def test_an_upscale_job_gives_the_picture_4x_larger_with_its_parameters_kept(
    engine: StepEngine, upscaler: RecordingRunner, make_worker: Any
):
    worker = make_worker(engine, upscaler=upscaler)
    source = png(48, 32, (200, 40, 40), text="ピカチュウ\nSeed: 7")

    result = await result_of(worker.submit(1, 10, up(source, seed=7)))

    (image,) = result.images
    picture = Image.open(io.BytesIO(image.png))
    assert picture.size == (192, 128) == (image.width, image.height)
    assert image.format == "png"
    assert image.seed == 7
    text = read_parameters(picture) or ""
    assert text.startswith("ピカチュウ\nSeed: 7")
    assert "tiny-x4" in text
    assert result.model == "tiny-x4"  # the upscaler's name, not the engine's
    assert engine.batches == []  # the engine never saw it
    assert upscaler.threads == [THREAD_NAME]


async def test_progress_counts_tiles(engine: StepEngine, upscaler: RecordingRunner, make_worker):
    worker = make_worker(engine, upscaler=upscaler)
    seen: list[Progress] = []
    # 300x300 on the CPU runs in 256-pixel tiles: 2x2 of them.
    handle = worker.submit(1, 10, up(png(300, 300, (0, 90, 200))), on_progress=seen.append)

    await result_of(handle)
    await asyncio.sleep(0)  # the last progress callback is posted to the loop

    assert [(p.step, p.total) for p in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]


async def test_upscales_batch_only_with_upscales(
    engine: StepEngine, upscaler: RecordingRunner, make_worker
):
    worker = make_worker(engine, upscaler=upscaler, max_batch=4)
    blocker = await start_blocker(worker, engine)
    source = png(16, 16, (10, 200, 10))
    handles = [
        worker.submit(1, 10, req("draw-a")),
        worker.submit(2, 10, up(source, seed=2)),
        worker.submit(3, 11, req("draw-b")),
        worker.submit(4, 11, up(source, seed=4)),
    ]
    engine.run_free()

    await result_of(blocker)
    results = [await result_of(handle) for handle in handles]

    assert upscaler.batches == [[2, 4]]  # one call for both upscales, nothing else in it
    assert ["draw-a", "draw-b"] in engine.batches
    assert all("draw" in p for batch in engine.batches[1:] for p in batch)
    assert [r.images[0].width for r in results] == [64, 64, 64, 64]  # drawn 64, upscaled 16x4


async def test_a_worker_without_an_upscaler_refuses_an_upscale_at_once(engine, make_worker):
    worker = make_worker(engine)

    with pytest.raises(UpscalerOffError):
        worker.submit(1, 10, up(png(8, 8, (1, 2, 3))))
    assert worker.queued == 0


async def test_cancel_stops_a_running_upscale_between_tiles(
    engine: StepEngine, upscaler: RecordingRunner, make_worker
):
    worker = make_worker(engine, upscaler=upscaler)
    upscaler.gate_after_first()
    handle = worker.submit(1, 10, up(png(300, 300, (0, 90, 200))))
    assert await asyncio.to_thread(upscaler.first_tile.wait, 10)  # one tile of four is done

    assert handle.cancel()
    upscaler.release()

    assert isinstance(await error_of(handle), JobCancelledError)
    # The worker carries on: the next upscale comes out.
    again = await result_of(worker.submit(2, 10, up(png(8, 8, (1, 2, 3)))))
    assert again.images[0].width == 32
