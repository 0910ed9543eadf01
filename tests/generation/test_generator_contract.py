"""The `Generator` contract, run against every implementation.

- "thread": `ThreadGenerator` over the in-process worker thread;
- "redis": `RemoteGenerator` on a real `redis-server`, served by a real `pokemon-bot worker`
  subprocess.

Both run the fake engine (`generation/fake_engine.py`: steps that sleep, `fail=` prompts that
fail on their own), so the same requests behave the same on both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from generation.errors import GenerationError, QueueFullError, WorkerStoppedError
from generation.fake_engine import FakeEngine, parse
from generation.generator import (
    Cancelled,
    Done,
    Failed,
    Generator,
    JobEvent,
    JobHandle,
    Queued,
    Started,
)
from generation.local import ThreadGenerator
from generation.remote import RemoteGenerator
from generation.types import GenerationRequest, Progress
from generation.worker import GenerationWorker
from tests.redisprocs import Workers

WAIT = 30.0  # a bound on waits, so a bug fails instead of hanging; never a speed assertion
LONG = 400  # steps of a job that runs until it is cancelled or stopped
STEP = 0.02

Make = Callable[..., Awaitable[Generator]]


@pytest.fixture(params=["thread", "redis"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Make]:
    """`await make(max_batch=1, queue_size=2)`: a started generator with one fake device."""
    made: list[Generator] = []
    # Only the Redis flavour starts redis-server (a sync fixture, fetched before any await).
    workers: Workers | None = (
        request.getfixturevalue("workers") if request.param == "redis" else None
    )

    async def make_thread(*, max_batch: int = 1, queue_size: int = 2) -> Generator:
        engine = FakeEngine(parse(f"fake:step={STEP},fail=fail"))
        generator = ThreadGenerator(
            GenerationWorker(engine, queue_size=queue_size, max_batch=max_batch)
        )
        await generator.start()
        made.append(generator)
        return generator

    async def make_redis(*, max_batch: int = 1, queue_size: int = 2) -> Generator:
        assert workers is not None
        workers.start("w1", model=f"fake:step={STEP},fail=fail", max_batch=max_batch)
        generator = RemoteGenerator(workers.url, queue_size=queue_size, refresh_interval=0.1)
        await generator.start()
        made.append(generator)
        await generator.wait_for_workers(1, WAIT)
        return generator

    yield make_thread if request.param == "thread" else make_redis
    for generator in made:
        if not getattr(generator, "stopped", False):
            await generator.stop(timeout=0)


def req(prompt: str, *, steps: int = 3, **options: Any) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, steps=steps, height=64, width=64, **options)


async def events_of(handle: JobHandle) -> list[JobEvent]:
    async with asyncio.timeout(WAIT):
        return [event async for event in handle.events()]


async def first(handle: JobHandle, kind: type, *, step: int = 0) -> list[JobEvent]:
    """Read events until one of `kind` (for Progress: at least `step`); returns those read."""
    seen: list[JobEvent] = []
    async with asyncio.timeout(WAIT):
        async for event in handle.events():
            seen.append(event)
            if isinstance(event, kind) and (not isinstance(event, Progress) or event.step >= step):
                return seen
    raise AssertionError(f"the job ended before a {kind.__name__}: {seen}")


async def outcome(handle: JobHandle) -> Done | Failed | Cancelled:
    async with asyncio.timeout(WAIT):
        return await handle.wait()


async def test_a_job_goes_queued_started_progress_done_in_order(make: Make) -> None:
    generator = await make()
    events = await events_of(await generator.submit(1, 10, req("one", steps=4)))
    kinds = [type(event).__name__ for event in events]
    assert kinds.count("Started") == 1
    started = kinds.index("Started")
    assert set(kinds[:started]) <= {"Queued"}
    assert kinds[-1] == "Done"
    progress = [e for e in events[started + 1 : -1] if isinstance(e, Progress)]
    assert progress, kinds
    assert all(isinstance(e, Progress) for e in events[started + 1 : -1])
    steps = [e.step for e in progress]
    assert steps == sorted(steps)
    assert steps[-1] == 4
    done = events[-1]
    assert isinstance(done, Done)
    assert done.result.job_id == 1
    assert done.result.first.png.startswith(b"\x89PNG")
    assert (done.result.first.steps, done.result.first.width, done.result.first.height) == (
        4,
        64,
        64,
    )


async def test_one_failing_member_fails_alone(make: Make) -> None:
    generator = await make(max_batch=2)
    good = await generator.submit(1, 10, req("good"))
    bad = await generator.submit(2, 11, req("this one will fail"))
    assert isinstance(await outcome(good), Done)
    failed = await outcome(bad)
    assert isinstance(failed, Failed)
    assert isinstance(failed.error, GenerationError)
    assert failed.error.code == "generation_failed"
    assert "fail" in str(failed.error)


async def test_compatible_jobs_run_as_one_batch(make: Make) -> None:
    generator = await make(max_batch=2)
    blocker = await generator.submit(1, 10, req("blocker", steps=LONG))
    await first(blocker, Progress, step=1)
    # While the device is busy both wait together (for Redis: in the worker, which holds
    # twice its batch), so the next engine call takes them as one batch.
    pair = [await generator.submit(job_id, job_id, req(f"pair{job_id}")) for job_id in (2, 3)]
    await asyncio.sleep(1.0)  # a bound, not a speed check: reading them takes milliseconds
    assert blocker.cancel() is True
    assert isinstance(await outcome(blocker), Cancelled)
    for handle in pair:
        done = await outcome(handle)
        assert isinstance(done, Done), done
        assert done.result.batch_size == 2


async def test_cancelling_queued_jobs_means_they_never_run(make: Make) -> None:
    generator = await make()
    blocker = await generator.submit(1, 10, req("blocker", steps=LONG))
    await first(blocker, Progress, step=1)
    # For Redis: job 2 is released to the worker's stream, job 3 still held by the bot.
    queued = [await generator.submit(job_id, 11, req(f"q{job_id}")) for job_id in (2, 3)]
    for handle in queued:
        assert handle.cancel() is True
    for handle in queued:
        events = await events_of(handle)
        assert isinstance(events[-1], Cancelled)
        assert not any(isinstance(e, Started | Progress) for e in events), events
    assert blocker.cancel() is True
    assert isinstance(await outcome(blocker), Cancelled)


async def test_cancelling_a_running_job_stops_it_before_its_last_step(make: Make) -> None:
    generator = await make()
    handle = await generator.submit(1, 10, req("long", steps=LONG))
    await first(handle, Progress, step=2)
    assert handle.cancel() is True
    events = await events_of(handle)
    assert isinstance(events[-1], Cancelled)
    steps = [e.step for e in events if isinstance(e, Progress)]
    assert not steps or max(steps) < LONG
    assert handle.cancel() is False  # finished: nothing left to cancel


async def test_a_full_queue_refuses_at_once(make: Make) -> None:
    generator = await make(queue_size=2)
    blocker = await generator.submit(1, 10, req("blocker", steps=LONG))
    await first(blocker, Started)
    accepted: list[JobHandle] = [blocker]
    refused: QueueFullError | None = None
    for job_id in range(2, 40):
        try:
            accepted.append(await generator.submit(job_id, job_id, req(f"j{job_id}")))
        except QueueFullError as exc:
            refused = exc
            break
    assert refused is not None, "40 jobs and never a full queue"
    assert len(accepted) >= 3  # the running job and the queue's two places at least
    for handle in reversed(accepted):  # the waiting ones first, so none starts meanwhile
        handle.cancel()
    for handle in accepted:
        assert isinstance(await outcome(handle), Cancelled)


async def test_status_counts_running_jobs_and_capacity(make: Make) -> None:
    generator = await make(max_batch=2)
    idle = await generator.status()
    assert idle.healthy
    assert (idle.queued, idle.running) == (0, 0)
    assert idle.workers == 1
    assert idle.capacity == 2
    handle = await generator.submit(1, 10, req("long", steps=LONG))
    await first(handle, Progress, step=1)
    busy = await generator.status()
    assert busy.running == 1
    handle.cancel()
    await outcome(handle)


async def test_stop_returns_unfinished_jobs_and_fails_them_as_stopped(make: Make) -> None:
    generator = await make()
    running = await generator.submit(1, 10, req("long", steps=LONG))
    await first(running, Progress, step=1)
    waiting = await generator.submit(2, 11, req("waiting"))
    left = await generator.stop(timeout=0)
    assert set(left) == {1, 2}
    for handle in (running, waiting):
        ended = await outcome(handle)
        assert isinstance(ended, Failed)
        assert isinstance(ended.error, WorkerStoppedError)
    with pytest.raises(WorkerStoppedError):
        await generator.submit(3, 12, req("late"))


async def test_a_second_completion_changes_nothing(make: Make) -> None:
    generator = await make()
    handle = await generator.submit(1, 10, req("one"))
    done = await outcome(handle)
    assert isinstance(done, Done)
    handle.publish(Done(done.result))
    handle.publish(Failed(GenerationError("late")))
    handle.publish(Queued(1, None))
    handle.publish(Started(total_steps=3))
    assert handle.outcome is done
    events = await events_of(handle)
    assert events[-1] is done
    assert sum(isinstance(e, Done | Failed | Cancelled) for e in events) == 1
    assert generator.handle(1) is None
