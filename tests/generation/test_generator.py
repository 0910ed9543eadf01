"""The pieces of generation/generator.py every generator shares: the one ETA formula, the
queue places a handle is told, and a finished future read as a job event."""

from __future__ import annotations

import asyncio

import pytest

from generation.errors import (
    GenerationError,
    JobCancelledError,
    OutOfMemoryError,
)
from generation.generator import (
    Cancelled,
    Done,
    Failed,
    JobHandle,
    Places,
    Queued,
    Started,
    eta_seconds,
    outcome_of,
)
from generation.types import GenerationResult, Progress


@pytest.mark.parametrize(
    ("place", "average", "workers", "running_for", "expected"),
    [
        (1, 10.0, 1, None, 10.0),  # next, nothing running: its own run
        (3, 10.0, 1, None, 30.0),  # two batches ahead, then its own
        (1, 10.0, 1, 4.0, 16.0),  # the running batch has 6 s left, then its own run
        (2, 10.0, 1, 25.0, 20.0),  # a run over its average has nothing left (never negative)
        (0, 10.0, 1, 4.0, 6.0),  # running itself: what is left of its run
        (3, 10.0, 2, None, 20.0),  # two workers: places 1-2 run in the first round, 3 next
        (4, 10.0, 2, None, 20.0),
        (5, 10.0, 2, 8.0, 32.0),  # third round, after 2 s left of the running one
        (2, 10.0, 0, None, 20.0),  # no worker counted: as one
    ],
)
def test_the_one_eta_formula(
    place: int, average: float, workers: int, running_for: float | None, expected: float
) -> None:
    assert eta_seconds(place, average, workers=workers, running_for=running_for) == expected


def test_no_eta_before_a_run_was_measured() -> None:
    assert eta_seconds(1, None) is None
    assert eta_seconds(3, None, workers=2, running_for=1.0) is None


async def next_events(handle: JobHandle, count: int) -> list[object]:
    """The handle's next `count` events, as a reader sees them (places coalesced)."""
    events = handle.events()
    return [await asyncio.wait_for(anext(events), 5) for _ in range(count)]


async def test_a_place_is_published_only_when_it_changes() -> None:
    handle = JobHandle(7, lambda: True)
    places = Places()
    places.show(handle, 3, 30.0)
    # The same place again is no news, whatever the estimate: were it published, the reader
    # would see the newer Queued(3, 25.0) (places are coalesced).
    places.show(handle, 3, 25.0)
    assert await next_events(handle, 1) == [Queued(3, 30.0)]
    places.show(handle, 2, 20.0)
    assert await next_events(handle, 1) == [Queued(2, 20.0)]


async def test_started_publishes_step_zero_and_a_later_place_is_news_again() -> None:
    handle = JobHandle(7, lambda: True)
    places = Places()
    places.show(handle, 1, None)
    places.started(handle, 25)
    assert await next_events(handle, 3) == [Queued(1, None), Started(25), Progress(7, 0, 25, 0.0)]
    other = JobHandle(8, lambda: True)
    places.show(other, 2, 9.0)
    assert await next_events(other, 1) == [Queued(2, 9.0)]
    places.forget(8)
    places.show(other, 2, 8.0)  # forgotten (it left and came back): told again
    assert await next_events(other, 1) == [Queued(2, 8.0)]


def result(job_id: int) -> GenerationResult:
    return GenerationResult(job_id=job_id, images=(), queued_seconds=0.0, run_seconds=1.0)


async def test_a_finished_future_reads_as_its_event() -> None:
    loop = asyncio.get_running_loop()

    def future_with(
        value: GenerationResult | BaseException | None,
    ) -> asyncio.Future[GenerationResult]:
        future: asyncio.Future[GenerationResult] = loop.create_future()
        if value is None:
            future.cancel()
        elif isinstance(value, BaseException):
            future.set_exception(value)
        else:
            future.set_result(value)
        return future

    assert outcome_of(future_with(result(1))) == Done(result(1))
    assert outcome_of(future_with(None)) == Cancelled()
    assert outcome_of(future_with(JobCancelledError("stop"))) == Cancelled()
    oom = OutOfMemoryError("too big")
    assert outcome_of(future_with(oom)) == Failed(oom)
    odd = outcome_of(future_with(KeyError("x")))
    assert isinstance(odd, Failed)
    assert type(odd.error) is GenerationError
    assert str(odd.error) == "unexpected KeyError: 'x'"
    assert isinstance(odd.error.__cause__, KeyError)
