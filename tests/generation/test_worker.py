"""The generation worker with real threads, a real event loop and real futures.

Only the engine is a stand-in (the GPU is the one edge we cannot reach here): `StepEngine`
implements the `Engine` interface of docs/DESIGN.md with steps the test controls.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from generation.errors import (
    BadImageError,
    FatalDeviceError,
    GenerationError,
    JobCancelledError,
    JobTimeoutError,
    OutOfMemoryError,
    QueueFullError,
    UnsafeImageError,
    WorkerStoppedError,
)
from generation.types import (
    GeneratedImage,
    GenerationRequest,
    GenerationResult,
    Progress,
    TokenizedPrompt,
)
from generation.worker import THREAD_NAME, GenerationWorker, Ticket

WAIT = 10.0  # generous bound on waits so a bug fails the test instead of hanging it


class StepEngine:
    """An `Engine` whose denoising steps run freely, or one per `tick()` while held.

    While a step waits for its tick it polls `is_cancelled`, so a held batch can still be
    cancelled, time out, or be aborted by `stop()`. Prompts name the jobs.
    """

    device = "fake"
    dtype = "float32"
    safety_checker = False
    model = "step-engine"

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._free = True
        self._tickets = 0
        self.batches: list[list[str]] = []  # the prompts of each generate() call
        self.steps_run: dict[str, int] = {}
        self.decoded: list[str] = []
        self.thread_names: list[str] = []
        self.raise_on: dict[str, BaseException] = {}  # prompt -> the whole call raises this
        self.member_error: dict[str, GenerationError] = {}  # prompt -> that entry is an error
        self.seed_error: dict[int, GenerationError] = {}  # seed -> that picture is an error

    def hold(self) -> None:
        """From now on each step waits for a `tick()`."""
        with self._cond:
            self._free = False

    def tick(self, steps: int = 1) -> None:
        with self._cond:
            self._tickets += steps
            self._cond.notify_all()

    def run_free(self) -> None:
        with self._cond:
            self._free = True
            self._cond.notify_all()

    def tokenize(self, text: str) -> TokenizedPrompt:
        return TokenizedPrompt(ids=(1,) * 77, count=len(text), truncated=False)

    def _wait_for_step(self, stopped: Callable[[], bool]) -> bool:
        with self._cond:
            while not self._free and self._tickets == 0:
                if stopped():
                    return False
                self._cond.wait(0.005)
            if not self._free:
                self._tickets -= 1
            return True

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        on_step: Callable[[int, int], None] | None = None,
        is_cancelled: Callable[[int], bool] | None = None,
    ) -> list[GeneratedImage | GenerationError]:
        prompts = [r.prompt for r in requests]
        self.batches.append(prompts)
        self.thread_names.append(threading.current_thread().name)
        for prompt in prompts:
            if prompt in self.raise_on:
                raise self.raise_on[prompt]
        cancelled = [False] * len(requests)

        def check() -> bool:
            for i in range(len(requests)):
                cancelled[i] = cancelled[i] or bool(is_cancelled and is_cancelled(i))
            return all(cancelled)

        total = requests[0].steps
        for step in range(1, total + 1):
            if check() or not self._wait_for_step(check):
                break
            for i, prompt in enumerate(prompts):
                if not cancelled[i]:
                    self.steps_run[prompt] = self.steps_run.get(prompt, 0) + 1
            if on_step is not None:
                on_step(step, total)
        check()
        # One entry per picture, as the real engine answers a request with `count`.
        entries: list[GeneratedImage | GenerationError] = []
        for i, request in enumerate(requests):
            for seed in request.seeds():
                if cancelled[i]:
                    entries.append(JobCancelledError(request.prompt))
                elif request.prompt in self.member_error:
                    entries.append(self.member_error[request.prompt])
                elif seed in self.seed_error:
                    entries.append(self.seed_error[seed])
                else:
                    self.decoded.append(request.prompt)
                    entries.append(
                        GeneratedImage(
                            png=b"\x89PNG" + request.prompt.encode(),
                            seed=seed,
                            steps=request.steps,
                            width=request.width,
                            height=request.height,
                            token_count=len(request.prompt),
                            truncated=False,
                        )
                    )
        return entries


def req(prompt: str, *, steps: int = 3, **options: Any) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, steps=steps, height=64, width=64, **options)


async def wait_for(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), WAIT)


async def result_of(handle: Ticket) -> GenerationResult:
    return await asyncio.wait_for(handle.future, WAIT)


async def error_of(handle: Ticket) -> BaseException:
    with pytest.raises(GenerationError) as caught:
        await asyncio.wait_for(handle.future, WAIT)
    return caught.value


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


@pytest.fixture
def engine() -> StepEngine:
    return StepEngine()


@pytest.fixture
async def make_worker() -> AsyncIterator[Callable[..., GenerationWorker]]:
    """Build and start workers on the test's loop; stop every one of them afterwards."""
    made: list[GenerationWorker] = []

    def make(engine: Any, **options: Any) -> GenerationWorker:
        options.setdefault("queue_size", 8)
        worker = GenerationWorker(engine, **options)
        worker.start()
        made.append(worker)
        return worker

    yield make
    for worker in made:
        await worker.stop(timeout=0)  # a held engine is aborted at once
    assert worker_threads() == []


async def start_blocker(
    worker: GenerationWorker, engine: StepEngine, job_id: int = 100, user_id: int = 99
) -> Ticket:
    """Hold the engine and get one job running, so later submissions stay queued."""
    engine.hold()
    started = asyncio.Event()
    handle = worker.submit(job_id, user_id, req(f"blocker{job_id}"), on_start=started.set)
    await wait_for(started)
    return handle


# ---- results, progress, thread ---------------------------------------------------------


async def test_submit_resolves_future_with_generation_result_timings_and_model(engine, make_worker):
    worker = make_worker(engine)
    handle = worker.submit(1, 10, req("ピカチュウ", seed=42, steps=4))

    result = await result_of(handle)

    assert handle.job_id == 1
    assert isinstance(result, GenerationResult)
    assert result.job_id == 1
    (image,) = result.images
    assert image.png == b"\x89PNG" + "ピカチュウ".encode()
    assert (image.seed, image.steps, image.width, image.height) == (42, 4, 64, 64)
    assert result.batch_size == 1
    assert result.queued_seconds >= 0
    assert result.run_seconds >= 0
    assert result.model == "step-engine"  # the engine that drew it, whatever the settings say


async def test_progress_and_on_start_are_delivered_on_the_loop_thread(engine, make_worker):
    worker = make_worker(engine)
    loop_thread = threading.get_ident()
    seen: list[tuple[str, Any, int]] = []

    def on_start() -> None:
        seen.append(("start", None, threading.get_ident()))

    def on_progress(progress: Progress) -> None:
        seen.append(("progress", progress, threading.get_ident()))

    handle = worker.submit(7, 1, req("a", steps=3), on_progress=on_progress, on_start=on_start)
    await result_of(handle)

    assert [kind for kind, _, _ in seen] == ["start", "progress", "progress", "progress"]
    assert {thread for _, _, thread in seen} == {loop_thread}
    progress = [p for kind, p, _ in seen if kind == "progress"]
    assert [(p.job_id, p.step, p.total) for p in progress] == [(7, 1, 3), (7, 2, 3), (7, 3, 3)]
    assert all(p.elapsed >= 0 for p in progress)
    assert [p.elapsed for p in progress] == sorted(p.elapsed for p in progress)


async def test_engine_runs_only_on_the_thread_named_generation_worker(engine, make_worker):
    worker = make_worker(engine)
    await result_of(worker.submit(1, 1, req("a")))
    await result_of(worker.submit(2, 2, req("b")))

    assert engine.thread_names == [THREAD_NAME, THREAD_NAME]
    assert len(worker_threads()) == 1


async def test_per_member_error_from_engine_fails_that_job_only(engine, make_worker):
    engine.member_error["bad"] = UnsafeImageError("flagged")
    worker = make_worker(engine)

    bad = worker.submit(1, 1, req("bad"))
    good = worker.submit(2, 2, req("good"))

    assert isinstance(await error_of(bad), UnsafeImageError)
    assert (await result_of(good)).job_id == 2
    assert worker.healthy


# ---- backpressure ------------------------------------------------------------------------


async def test_full_queue_raises_queue_full_error_at_once_not_counting_running_job(
    engine, make_worker
):
    worker = make_worker(engine, queue_size=2)
    await start_blocker(worker, engine)

    worker.submit(1, 1, req("a"))
    worker.submit(2, 2, req("b"))
    with pytest.raises(QueueFullError):
        worker.submit(3, 3, req("c"))

    assert (worker.queued, worker.running) == (2, 1)


# ---- cancellation ------------------------------------------------------------------------


async def test_cancel_queued_job_fails_its_future_and_engine_never_sees_it(engine, make_worker):
    worker = make_worker(engine)
    blocker = await start_blocker(worker, engine)
    doomed = worker.submit(1, 1, req("doomed"))
    kept = worker.submit(2, 2, req("kept"))

    assert doomed.cancel() is True
    assert worker.queued == 1
    engine.run_free()

    assert isinstance(await error_of(doomed), JobCancelledError)
    await result_of(blocker)
    await result_of(kept)
    assert engine.batches == [["blocker100"], ["kept"]]


async def test_cancel_running_job_stops_within_one_step_without_decoding(engine, make_worker):
    worker = make_worker(engine)
    engine.hold()
    started = asyncio.Event()
    first_step = asyncio.Event()
    running = worker.submit(
        1, 1, req("long", steps=50), on_start=started.set, on_progress=lambda _: first_step.set()
    )
    after = worker.submit(2, 2, req("after"))
    await wait_for(started)
    engine.tick()
    await wait_for(first_step)

    assert running.cancel() is True

    assert isinstance(await error_of(running), JobCancelledError)
    assert engine.steps_run["long"] <= 2
    assert "long" not in engine.decoded
    engine.run_free()
    assert (await result_of(after)).job_id == 2


async def test_cancel_after_finish_returns_false(engine, make_worker):
    worker = make_worker(engine)
    handle = worker.submit(1, 1, req("a"))
    await result_of(handle)

    assert handle.cancel() is False


async def test_cancelling_the_future_cancels_the_running_job(engine, make_worker):
    worker = make_worker(engine)
    engine.hold()
    started = asyncio.Event()
    handle = worker.submit(1, 1, req("long", steps=50), on_start=started.set)
    after = worker.submit(2, 2, req("after"))
    await wait_for(started)

    handle.future.cancel()
    await asyncio.sleep(0)  # the future's done callbacks run on the next loop iteration
    engine.run_free()

    await result_of(after)
    assert "long" not in engine.decoded
    assert engine.steps_run.get("long", 0) < 50


# ---- time limit --------------------------------------------------------------------------


async def test_job_over_time_limit_fails_with_job_timeout_error(engine, make_worker):
    worker = make_worker(engine, job_timeout=0.2)
    engine.hold()  # never ticks: the job can only end by its time limit
    slow = worker.submit(1, 1, req("slow", steps=10))

    assert isinstance(await error_of(slow), JobTimeoutError)
    assert "slow" not in engine.decoded
    engine.run_free()
    assert (await result_of(worker.submit(2, 1, req("next")))).job_id == 2


# ---- device errors -----------------------------------------------------------------------


async def test_out_of_memory_fails_only_that_job_and_next_job_succeeds(engine, make_worker):
    engine.raise_on["huge"] = OutOfMemoryError("CUDA out of memory")
    worker = make_worker(engine)

    huge = worker.submit(1, 1, req("huge"))
    small = worker.submit(2, 1, req("small"))

    assert isinstance(await error_of(huge), OutOfMemoryError)
    assert (await result_of(small)).job_id == 2
    assert worker.healthy
    assert worker.fatal_error is None


async def test_fatal_device_error_makes_worker_unhealthy_and_stops_every_job(engine, make_worker):
    boom = FatalDeviceError("CUDA error: an illegal memory access was encountered")
    engine.raise_on["crash"] = boom
    worker = make_worker(engine)
    fatal_seen: list[tuple[BaseException, int]] = []
    fatal_called = asyncio.Event()

    def on_fatal(exc: BaseException) -> None:
        fatal_seen.append((exc, threading.get_ident()))
        fatal_called.set()

    worker.on_fatal = on_fatal
    blocker = await start_blocker(worker, engine)
    crash = worker.submit(1, 1, req("crash"))
    queued = worker.submit(2, 2, req("queued"))
    engine.run_free()

    await result_of(blocker)
    assert await error_of(crash) is boom
    assert isinstance(await error_of(queued), WorkerStoppedError)
    await wait_for(fatal_called)
    assert fatal_seen == [(boom, threading.get_ident())]
    assert worker.healthy is False
    assert worker.fatal_error is boom
    assert "queued" not in [p for batch in engine.batches for p in batch]
    with pytest.raises(WorkerStoppedError):
        worker.submit(3, 3, req("later"))


async def test_unexpected_exception_mentioning_cuda_is_fatal(engine, make_worker):
    engine.raise_on["crash"] = RuntimeError("CUDA error: device-side assert triggered")
    worker = make_worker(engine)

    error = await error_of(worker.submit(1, 1, req("crash")))

    assert isinstance(error, FatalDeviceError)
    assert isinstance(error.__cause__, RuntimeError)
    assert worker.healthy is False
    assert worker.fatal_error is error


async def test_unexpected_non_device_exception_fails_batch_but_worker_stays_healthy(
    engine, make_worker
):
    engine.raise_on["buggy"] = ValueError("some bug")
    worker = make_worker(engine)

    error = await error_of(worker.submit(1, 1, req("buggy")))

    assert type(error) is GenerationError
    assert worker.healthy
    assert (await result_of(worker.submit(2, 1, req("fine")))).job_id == 2


# ---- scheduling --------------------------------------------------------------------------


async def test_round_robin_runs_user_b_second_after_user_a_queued_five(engine, make_worker):
    worker = make_worker(engine)
    handles = [worker.submit(i, 1, req(f"A{i}")) for i in range(1, 6)]
    handles.append(worker.submit(6, 2, req("B1")))

    await asyncio.gather(*(result_of(h) for h in handles))

    assert [batch[0] for batch in engine.batches] == ["A1", "B1", "A2", "A3", "A4", "A5"]


async def test_round_robin_rotates_users_and_keeps_fifo_within_each(engine, make_worker):
    worker = make_worker(engine)
    blocker = await start_blocker(worker, engine, user_id=1)
    handles = [
        worker.submit(1, 1, req("A1")),
        worker.submit(2, 1, req("A2")),
        worker.submit(3, 2, req("B1")),
        worker.submit(4, 3, req("C1")),
        worker.submit(5, 2, req("B2")),
        worker.submit(6, 3, req("C2")),
    ]
    engine.run_free()

    await asyncio.gather(result_of(blocker), *(result_of(h) for h in handles))

    order = [batch[0] for batch in engine.batches]
    # User 1 was just served by the blocker, so the others go first.
    assert order == ["blocker100", "B1", "C1", "A1", "B2", "C2", "A2"]


async def test_position_follows_the_order_the_scheduler_will_run(engine, make_worker):
    worker = make_worker(engine)
    await start_blocker(worker, engine, job_id=100, user_id=9)
    worker.submit(1, 1, req("A1"))
    worker.submit(2, 1, req("A2"))
    worker.submit(3, 2, req("B1"))

    positions = {job: worker.position(job) for job in (100, 1, 2, 3, 404)}

    assert positions == {100: 0, 1: 1, 3: 2, 2: 3, 404: None}


async def test_eta_is_none_before_any_measurement(engine, make_worker):
    worker = make_worker(engine)
    await start_blocker(worker, engine)
    worker.submit(1, 1, req("a"))

    assert worker.eta_seconds(100) is None
    assert worker.eta_seconds(1) is None


async def test_eta_uses_measured_run_time_times_position(engine, make_worker):
    worker = make_worker(engine)
    measured = await result_of(worker.submit(1, 1, req("first")))
    await start_blocker(worker, engine, job_id=100)
    worker.submit(2, 2, req("second"))
    worker.submit(3, 3, req("third"))

    # The first measurement is the average; the running job's remaining time is within [0, it].
    per_job = measured.run_seconds
    eta_running = worker.eta_seconds(100)
    eta_third = worker.eta_seconds(3)
    assert eta_running is not None
    assert eta_third is not None
    assert 0 <= eta_running <= per_job
    assert 2 * per_job <= eta_third <= 3 * per_job + 1e-9
    assert worker.eta_seconds(404) is None


# ---- dynamic batching --------------------------------------------------------------------


async def test_compatible_jobs_share_one_engine_call_filled_round_robin(engine, make_worker):
    worker = make_worker(engine, max_batch=3)
    blocker = await start_blocker(worker, engine, user_id=9)
    handles = [
        worker.submit(1, 1, req("A1")),
        worker.submit(2, 1, req("A2")),
        worker.submit(3, 1, req("A3")),
        worker.submit(4, 2, req("B-big", steps=3, guidance=9.0)),  # another batch_key
        worker.submit(5, 3, req("C1")),
        worker.submit(6, 2, req("B2")),
    ]
    engine.run_free()

    results = await asyncio.gather(result_of(blocker), *(result_of(h) for h in handles))

    # Head A1; fill round: B's first job is incompatible (B2 must wait behind it), C1 fits,
    # then A again. B-big runs next on its own (B waited longest), then the rest.
    assert engine.batches == [["blocker100"], ["A1", "C1", "A2"], ["B-big"], ["A3", "B2"]]
    sizes = {r.job_id: r.batch_size for r in results}
    assert sizes == {100: 1, 1: 3, 5: 3, 2: 3, 4: 1, 3: 2, 6: 2}


async def test_batch_budget_counts_pictures_and_a_job_gets_all_of_its_own(engine, make_worker):
    worker = make_worker(engine, max_batch=4)
    blocker = await start_blocker(worker, engine, user_id=9)
    handles = [
        worker.submit(1, 1, req("A1", count=3, seed=10)),
        worker.submit(2, 2, req("B1", count=2)),  # 3 + 2 > 4: waits for the next batch
        worker.submit(3, 3, req("C1")),  # fits beside A1's three
        worker.submit(4, 4, req("D1", count=4)),  # over the budget alone: runs on its own
    ]
    engine.run_free()

    results = await asyncio.gather(result_of(blocker), *(result_of(h) for h in handles))

    assert engine.batches == [["blocker100"], ["A1", "C1"], ["B1"], ["D1"]]
    by_job = {r.job_id: r for r in results}
    assert [image.seed for image in by_job[1].images] == [10, 11, 12]
    assert len(by_job[3].images) == 1
    assert len(by_job[4].images) == 4
    assert {j: r.batch_size for j, r in by_job.items()} == {100: 1, 1: 4, 3: 4, 2: 2, 4: 4}


async def test_a_job_gets_the_pictures_that_came_out_and_fails_only_when_none_did(
    engine, make_worker
):
    worker = make_worker(engine, max_batch=4)
    engine.seed_error[21] = UnsafeImageError("flagged")
    engine.seed_error.update({30: UnsafeImageError("flagged"), 31: BadImageError("black")})
    some = worker.submit(1, 1, req("some", count=3, seed=20))
    none = worker.submit(2, 2, req("none", count=2, seed=30))

    result = await result_of(some)
    error = await error_of(none)

    assert [image.seed for image in result.images] == [20, 22]
    assert isinstance(error, UnsafeImageError)  # the first picture's error


async def test_batch_delivers_progress_per_job(engine, make_worker):
    worker = make_worker(engine, max_batch=2)
    await start_blocker(worker, engine)
    seen: dict[int, list[Progress]] = {1: [], 2: []}
    a = worker.submit(1, 1, req("a", steps=2), on_progress=seen[1].append)
    b = worker.submit(2, 2, req("b", steps=2), on_progress=seen[2].append)
    engine.run_free()

    await result_of(a)
    await result_of(b)

    assert engine.batches[-1] == ["a", "b"]
    assert [(p.job_id, p.step, p.total) for p in seen[1]] == [(1, 1, 2), (1, 2, 2)]
    assert [(p.job_id, p.step, p.total) for p in seen[2]] == [(2, 1, 2), (2, 2, 2)]


async def test_cancelled_batch_member_leaves_batch_without_failing_others(engine, make_worker):
    worker = make_worker(engine, max_batch=3)
    blocker = await start_blocker(worker, engine)
    started = asyncio.Event()
    members = [
        worker.submit(1, 1, req("m1", steps=4), on_start=started.set),
        worker.submit(2, 2, req("m2", steps=4)),
        worker.submit(3, 3, req("m3", steps=4)),
    ]
    engine.tick(3)  # the blocker's steps
    await result_of(blocker)
    await wait_for(started)

    assert members[1].cancel() is True
    engine.run_free()

    assert isinstance(await error_of(members[1]), JobCancelledError)
    done = [await result_of(members[0]), await result_of(members[2])]
    assert [r.batch_size for r in done] == [3, 3]
    assert engine.batches[-1] == ["m1", "m2", "m3"]
    assert "m2" not in engine.decoded


async def test_position_counts_batches_when_batching(engine, make_worker):
    worker = make_worker(engine, max_batch=2)
    await start_blocker(worker, engine, user_id=9)
    worker.submit(1, 1, req("A1"))
    worker.submit(2, 2, req("B1"))
    worker.submit(3, 3, req("C1"))

    assert [worker.position(j) for j in (1, 2, 3)] == [1, 1, 2]


# ---- heartbeat ---------------------------------------------------------------------------


def wait_until_touched(path: Path, after: float) -> None:
    deadline = time.monotonic() + WAIT
    while not (path.exists() and path.stat().st_mtime > after):
        assert time.monotonic() < deadline, "heartbeat file was never touched"
        time.sleep(0.01)


async def test_heartbeat_is_touched_while_idle(engine, make_worker, tmp_path):
    beat = tmp_path / "heartbeat"
    make_worker(engine, heartbeat_file=beat, heartbeat_interval=0.05)
    await asyncio.to_thread(wait_until_touched, beat, 0)

    os.utime(beat, (1, 1))  # pretend it went stale; an idle worker must touch it again

    await asyncio.to_thread(wait_until_touched, beat, 1)


async def test_heartbeat_is_touched_during_a_long_job(engine, make_worker, tmp_path):
    beat = tmp_path / "heartbeat"
    worker = make_worker(engine, heartbeat_file=beat, heartbeat_interval=0.05)
    engine.hold()
    started = asyncio.Event()
    worker.submit(1, 1, req("long", steps=50), on_start=started.set)
    await wait_for(started)
    await asyncio.sleep(0.05)  # one interval since the idle loop's last touch
    os.utime(beat, (1, 1))

    engine.tick()  # a step of the running job is the only thing that can touch it now

    await asyncio.to_thread(wait_until_touched, beat, 1)
    assert worker.running == 1


async def test_heartbeat_stops_once_unhealthy(engine, make_worker, tmp_path):
    beat = tmp_path / "heartbeat"
    engine.raise_on["crash"] = FatalDeviceError("CUDA error")
    worker = make_worker(engine, heartbeat_file=beat, heartbeat_interval=0.02)
    await error_of(worker.submit(1, 1, req("crash")))
    os.utime(beat, (1, 1))

    await asyncio.sleep(0.2)  # ten intervals in which a healthy worker would have touched it

    assert beat.stat().st_mtime == 1


async def test_heartbeat_stops_after_stop(engine, tmp_path):
    beat = tmp_path / "heartbeat"
    worker = GenerationWorker(engine, queue_size=2, heartbeat_file=beat, heartbeat_interval=0.02)
    worker.start()
    await asyncio.to_thread(wait_until_touched, beat, 0)

    await worker.stop()
    os.utime(beat, (1, 1))
    await asyncio.sleep(0.2)

    assert beat.stat().st_mtime == 1


# ---- stopping ----------------------------------------------------------------------------


async def test_stop_lets_running_job_finish_and_fails_queued_with_worker_stopped(engine):
    worker = GenerationWorker(engine, queue_size=8)
    worker.start()
    blocker = await start_blocker(worker, engine)
    queued = [worker.submit(1, 1, req("a")), worker.submit(2, 2, req("b"))]
    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0)  # let stop() close the intake
    engine.run_free()

    left = await asyncio.wait_for(stopping, WAIT)

    assert sorted(left) == [1, 2]
    assert (await result_of(blocker)).job_id == 100
    for handle in queued:
        assert isinstance(await error_of(handle), WorkerStoppedError)
    assert engine.batches == [["blocker100"]]
    assert worker_threads() == []


async def test_submit_after_stop_raises_worker_stopped(engine):
    worker = GenerationWorker(engine, queue_size=8)
    worker.start()

    assert await worker.stop() == []

    with pytest.raises(WorkerStoppedError):
        worker.submit(1, 1, req("late"))
    assert worker_threads() == []


async def test_stop_timeout_cancels_the_running_batch(engine):
    worker = GenerationWorker(engine, queue_size=8)
    worker.start()
    blocker = await start_blocker(worker, engine)  # held forever: only the timeout ends it

    left = await worker.stop(timeout=0.1)

    assert left == [100]
    assert isinstance(await error_of(blocker), WorkerStoppedError)
    assert "blocker100" not in engine.decoded
    assert worker_threads() == []


def test_worker_survives_its_event_loop_closing(engine):
    loop = asyncio.new_event_loop()
    worker = GenerationWorker(engine, queue_size=8)
    worker.start(loop)
    engine.hold()
    worker.submit(1, 1, req("orphan"), on_progress=lambda _: None)
    deadline = time.monotonic() + WAIT
    while not engine.batches:  # no loop runs here to deliver on_start: watch the engine
        assert time.monotonic() < deadline
        time.sleep(0.01)
    loop.close()  # nobody is listening any more: results must be dropped, not crash the thread
    errors: list[threading.ExceptHookArgs] = []
    previous, threading.excepthook = threading.excepthook, errors.append
    try:
        engine.run_free()
        assert asyncio.run(worker.stop(timeout=WAIT)) == []
    finally:
        threading.excepthook = previous

    assert errors == []
    assert engine.decoded == ["orphan"]
    assert worker_threads() == []


# ---- logging -----------------------------------------------------------------------------


async def test_one_summary_log_line_per_finished_job(engine, make_worker, caplog):
    caplog.set_level(logging.INFO, logger="generation.worker")
    engine.raise_on["oom"] = OutOfMemoryError("out of memory")
    worker = make_worker(engine)
    ok = worker.submit(1, 11, req("ok", steps=3))
    oom = worker.submit(2, 22, req("oom", steps=3))
    await result_of(ok)
    await error_of(oom)

    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("job=")]

    assert len(lines) == 2
    assert lines[0].startswith("job=1 user=11 queued=")
    assert lines[0].endswith("steps=3 batch=1 outcome=done")
    assert lines[1].startswith("job=2 user=22 queued=")
    assert lines[1].endswith("steps=3 batch=1 outcome=out_of_memory")


# ---- the real engine ---------------------------------------------------------------------


async def test_two_real_jobs_on_tiny_engine_report_progress_and_return_png(request):
    try:
        tiny_engine = request.getfixturevalue("tiny_engine")
    except pytest.FixtureLookupError:
        pytest.skip("tests/conftest.py has no tiny_engine fixture yet")
    worker = GenerationWorker(tiny_engine, queue_size=4)
    worker.start()
    seen: dict[int, list[Progress]] = {1: [], 2: []}
    try:
        handles = [
            worker.submit(
                job,
                job,
                GenerationRequest(
                    prompt="ピカチュウ", seed=job, height=64, width=64, steps=2, scheduler="lms"
                ),
                on_progress=seen[job].append,
            )
            for job in (1, 2)
        ]
        results = [await asyncio.wait_for(h.future, 120) for h in handles]
    finally:
        await worker.stop(timeout=60)

    for job, result in zip((1, 2), results, strict=True):
        (image,) = result.images
        assert image.png.startswith(b"\x89PNG\r\n\x1a\n")
        assert (image.seed, image.width, image.height) == (job, 64, 64)
        assert [(p.step, p.total) for p in seen[job]][-1] == (2, 2)
    assert results[0].first.png != results[1].first.png
    assert worker_threads() == []


# ---- review: a cancel landing as a batch ends -----------------------------------------------


async def test_cancel_that_answers_true_as_the_batch_ends_fails_the_job_as_cancelled(engine):
    # The cancel is made to land in the instant after the worker decided this job's outcome,
    # before the batch was cleared: it must either answer False (too late) or win.
    loop = asyncio.get_running_loop()
    handles: dict[int, Ticket] = {}
    answers: list[bool] = []

    async def cancel_now(handle: Ticket) -> bool:
        return handle.cancel()

    class LateCancelWorker(GenerationWorker):
        def _outcome(self, job: Any, entry: Any, run_seconds: float, size: int) -> Any:
            outcome = GenerationWorker._outcome(self, job, entry, run_seconds, size)
            late = asyncio.run_coroutine_threadsafe(cancel_now(handles[job.job_id]), loop)
            answers.append(late.result(WAIT))
            return outcome

    worker = LateCancelWorker(engine, queue_size=4)
    worker.start()
    try:
        engine.hold()
        handles[1] = worker.submit(1, 1, req("a"))
        engine.run_free()
        try:
            outcome: object = await asyncio.wait_for(handles[1].future, WAIT)
        except GenerationError as exc:
            outcome = exc
    finally:
        await worker.stop(timeout=0)

    assert len(answers) == 1
    assert isinstance(outcome, JobCancelledError) == answers[0], (answers, outcome)


class HungEngine(StepEngine):
    """Blocks inside `generate` until released, deaf to `is_cancelled` (a hung device call)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def generate(self, requests: Sequence[GenerationRequest], **hooks: Any) -> Any:
        self.entered.set()
        self.release.wait(WAIT)
        return super().generate(requests, **hooks)


async def test_stop_that_leaves_a_hung_thread_fails_the_running_job_and_returns_its_id(
    monkeypatch,
):
    import generation.worker as worker_module

    monkeypatch.setattr(worker_module, "ABORT_GRACE_SECONDS", 0.05)
    engine = HungEngine()
    worker = GenerationWorker(engine, queue_size=4)
    worker.start()
    running = worker.submit(1, 1, req("hung"))
    queued = worker.submit(2, 2, req("queued"))
    await asyncio.to_thread(engine.entered.wait, WAIT)
    try:
        left = await worker.stop(timeout=0)

        assert sorted(left) == [1, 2]
        assert isinstance(await error_of(running), WorkerStoppedError)
        assert isinstance(await error_of(queued), WorkerStoppedError)
    finally:
        engine.release.set()
        for thread in worker_threads():
            await asyncio.to_thread(thread.join, WAIT)
    assert worker_threads() == []
