"""When previews are made: `BatchPreviews` on its own (explicit times), then the real worker
thread with the fake engine's timed steps and the tiny checkpoint's real latents."""

from __future__ import annotations

import asyncio
import io
import itertools
from collections.abc import Sequence
from typing import Any

import pytest
import torch
from PIL import Image

from generation.fake_engine import FakeEngine, FakeOptions
from generation.preview import PREVIEW_SIDE, BatchPreviews, PreviewPacing, count_spans
from generation.types import (
    GenerationRequest,
    GenerationResult,
    Progress,
)
from generation.worker import GenerationWorker
from tests.bot.conftest import GatedEngine

WAIT = 30.0
PACING = PreviewPacing(start_after=2.0, interval=2.0)


class Peeks:
    """A `peek` that counts its calls and returns latents of `rows` pictures."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        return torch.randn(self.rows, 4, 8, 8, generator=torch.Generator().manual_seed(1))


def sizes(previews: Sequence[bytes | None]) -> list[tuple[int, int] | None]:
    return [None if p is None else Image.open(io.BytesIO(p)).size for p in previews]


def test_spans_follow_the_jobs_counts() -> None:
    assert count_spans([2, 1, 3]) == [(0, 2), (2, 3), (3, 6)]


def test_no_preview_in_the_first_seconds_and_the_latents_are_not_read() -> None:
    previews = BatchPreviews(PACING, [1])
    peek = Peeks(1)
    for step, elapsed in enumerate((0.3, 0.9, 1.5, 1.99), start=1):
        assert previews.take(step, 25, elapsed, peek) == [None]
    assert peek.calls == 0


def test_at_most_one_preview_per_interval_and_none_at_the_last_step() -> None:
    previews = BatchPreviews(PACING, [1])
    peek = Peeks(1)
    made = [
        elapsed
        for step, elapsed in enumerate((2.0, 2.5, 3.9, 4.0, 4.1, 5.0, 6.2), start=1)
        if previews.take(step, 8, elapsed, peek)[0] is not None
    ]
    assert made == [2.0, 4.0, 6.2]
    assert previews.take(8, 8, 9.0, peek) == [None]  # the picture itself follows
    assert peek.calls == 3


def test_one_preview_per_job_of_a_batch_over_its_own_pictures() -> None:
    previews = BatchPreviews(PACING, [2, 1])
    shown = previews.take(3, 10, 2.5, Peeks(3))
    assert sizes(shown) == [(2 * PREVIEW_SIDE, PREVIEW_SIDE), (PREVIEW_SIDE, PREVIEW_SIDE)]


def test_latents_that_cannot_be_read_or_decoded_give_no_preview() -> None:
    def broken() -> Any:
        raise RuntimeError("the device went away")

    assert BatchPreviews(PACING, [1]).take(3, 10, 2.5, broken) == [None]
    # Three latent channels are not SD 1.x latents: that job goes on without a preview.
    assert BatchPreviews(PACING, [1]).take(3, 10, 2.5, lambda: torch.zeros(1, 3, 8, 8)) == [None]


def test_previews_off_or_an_engine_without_latents_make_none() -> None:
    peek = Peeks(1)
    assert BatchPreviews(None, [1]).take(3, 10, 9.0, peek) == [None]
    assert peek.calls == 0
    assert BatchPreviews(PACING, [1]).take(3, 10, 9.0, None) == [None]


def test_negative_pacing_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        PreviewPacing(start_after=-1.0)


# -- the worker thread ----------------------------------------------------------------------


async def run_jobs(
    engine: Any, pacing: PreviewPacing | None, counts: Sequence[int], steps: int
) -> dict[int, list[Progress]]:
    """Run one job per count in one batch; every job's progress events, by job id.

    The engine is held at its gate: a first job of one step (never batched with them: another step count) holds the thread
    at the gate while they are submitted, so they are queued together when it opens."""
    engine = GatedEngine(engine)
    engine.close_gate()
    worker = GenerationWorker(engine, queue_size=8, max_batch=sum(counts), previews=pacing)
    worker.start()
    seen: dict[int, list[Progress]] = {job_id: [] for job_id in range(1, len(counts) + 1)}
    try:
        blocker = GenerationRequest(prompt="p", steps=1, height=64, width=64)
        tickets = [worker.submit(0, 0, blocker)]
        tickets += [
            worker.submit(
                job_id,
                job_id,
                GenerationRequest(prompt="p", steps=steps, height=64, width=64, count=count),
                on_progress=seen[job_id].append,
            )
            for job_id, count in enumerate(counts, start=1)
        ]
        engine.open_gate()
        # The tiny checkpoint's safety checker may flag a picture: progress was seen anyway.
        futures = [ticket.future for ticket in tickets]
        results = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), WAIT)
        sizes_run = {r.batch_size for r in results[1:] if isinstance(r, GenerationResult)}
        assert sizes_run <= {sum(counts)}  # they ran as one batch
    finally:
        await worker.stop(timeout=5)
    return seen


async def test_a_batch_of_a_few_seconds_gets_paced_previews_per_job() -> None:
    pacing = PreviewPacing(start_after=0.3, interval=0.3)
    seen = await run_jobs(FakeEngine(FakeOptions(step=0.05)), pacing, [2, 1], steps=30)

    for job_id, width in ((1, 2 * PREVIEW_SIDE), (2, PREVIEW_SIDE)):
        events = seen[job_id]
        with_preview = [e for e in events if e.preview is not None]
        assert with_preview, f"job {job_id}: no preview in {len(events)} steps"
        assert all(e.elapsed >= pacing.start_after for e in with_preview)
        times = [e.elapsed for e in with_preview]
        assert all(b - a >= pacing.interval for a, b in itertools.pairwise(times))
        assert events[-1].preview is None  # none at the last step
        assert {sizes([e.preview])[0] for e in with_preview} == {(width, PREVIEW_SIDE)}
    # Both jobs got their previews at the same steps (one decode per due step).
    assert [e.step for e in seen[1] if e.preview] == [e.step for e in seen[2] if e.preview]


async def test_a_fast_job_never_makes_a_preview() -> None:
    seen = await run_jobs(FakeEngine(FakeOptions(step=0.01)), PreviewPacing(), [1], steps=5)
    assert len(seen[1]) == 5
    assert all(e.preview is None for e in seen[1])


async def test_previews_off_make_none_however_long_the_job() -> None:
    seen = await run_jobs(FakeEngine(FakeOptions(step=0.02)), None, [1], steps=20)
    assert all(e.preview is None for e in seen[1])


async def test_the_real_engine_hands_its_latents_to_a_preview(tiny_engine: Any) -> None:
    """The tiny checkpoint's own latents, every step due at once: a preview per job."""
    seen = await run_jobs(tiny_engine, PreviewPacing(0.0, 0.0), [1, 2], steps=3)
    for job_id, width in ((1, PREVIEW_SIDE), (2, 2 * PREVIEW_SIDE)):
        shown = [e.preview for e in seen[job_id] if e.preview is not None]
        assert len(shown) == 2  # steps 1 and 2 (3 is the last)
        assert sizes(shown) == [(width, PREVIEW_SIDE)] * 2
