"""The one `generation-worker` thread: owns the engine, schedules jobs fairly, batches them.

The shape is aiosqlite's core: one thread owns a resource that is not thread-safe, takes work
from a bounded intake, and resolves per-job asyncio futures on the loop with
`call_soon_threadsafe`, after checking `done()` and guarding against a closed loop. A sentinel
from the intake tells the thread to stop.

The intake is `generation.queue.FairQueue`, which holds the scheduling policy (round-robin
between users, FIFO within a user, compatible jobs sharing one `engine.generate` call); this
thread only runs what it hands out. The loop thread and the worker thread share it under one
lock.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from generation.errors import (
    FatalDeviceError,
    GenerationError,
    JobCancelledError,
    JobTimeoutError,
    OutOfMemoryError,
    QueueFullError,
    UpscalerOffError,
    WorkerStoppedError,
)
from generation.generator import eta_seconds
from generation.preview import BatchPreviews, Peek, PreviewPacing
from generation.queue import FairQueue
from generation.types import (
    DRAW,
    UPSCALE,
    GeneratedImage,
    GenerationRequest,
    GenerationResult,
    Progress,
    TokenizedPrompt,
)

log = logging.getLogger(__name__)

THREAD_NAME = "generation-worker"
# Weight of the newest measurement in the moving average of run times. A run is one engine
# call (a job, or a batch whose members finish together), which is what an ETA waits on.
EMA_ALPHA = 0.3
# After stop() cancels the running batch, how long to wait for the engine to notice.
ABORT_GRACE_SECONDS = 30.0
# stop() polls the thread instead of awaiting a loop future, so it works even when the loop
# the worker was started on is gone, and leaves no executor thread behind.
_JOIN_POLL_SECONDS = 0.01

_STOP: Any = object()  # the intake's sentinel: the thread exits when it takes this


class RunnerProtocol(Protocol):
    """What runs one kind of request: the engine (drawings), or an upscaler
    (`generation.upscale_job.UpscaleRunner`). One entry per picture, as `Engine.generate`."""

    model: str  # what made the pictures, for the result

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        # (step, total, peek): a drawing's runner hands over its latents for previews, an
        # upscale's has none (None).
        on_step: Callable[[int, int, Peek | None], None] | None = None,
        is_cancelled: Callable[[int], bool] | None = None,
    ) -> list[GeneratedImage | GenerationError]: ...


class EngineProtocol(RunnerProtocol, Protocol):
    """What the worker needs from `generation.pipeline.Engine` (see docs/DESIGN.md): a runner
    of drawings that also tokenizes."""

    device: str
    dtype: str
    safety_checker: bool

    def tokenize(self, text: str) -> TokenizedPrompt: ...


@dataclass(eq=False, slots=True)
class _Job:
    """A queued or running job. Mutable bookkeeping, private to the worker."""

    job_id: int
    user_id: int
    request: GenerationRequest
    future: asyncio.Future[GenerationResult]
    on_progress: Callable[[Progress], None] | None
    on_start: Callable[[], None] | None
    submitted_at: float
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    started_at: float | None = None
    timed_out: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Ticket:
    """A job given to the worker thread: its future (a `GenerationResult`, or a
    `GenerationError`) and a cancel. `generation.generator.outcome_of(future)` reads the
    future as a job event; the bot's handle with the events is `generation.generator.JobHandle`."""

    job_id: int
    future: asyncio.Future[GenerationResult]
    _cancel: Callable[[], bool] = field(repr=False)

    def cancel(self) -> bool:
        """Queued: removed at once. Running: stops within one step. False if already finished."""
        return self._cancel()


class GenerationWorker:
    """Runs generation jobs on one `generation-worker` thread that owns the engine."""

    def __init__(
        self,
        engine: EngineProtocol,
        *,
        queue_size: int,
        upscaler: RunnerProtocol | None = None,
        max_batch: int = 1,
        job_timeout: float = 300.0,
        heartbeat_file: Path | None = None,
        heartbeat_interval: float = 5.0,
        previews: PreviewPacing | None = None,
    ) -> None:
        """`previews`: when running jobs' progress carries a preview of their pictures
        (`generation.preview`); None: never."""
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if job_timeout <= 0:
            raise ValueError(f"job_timeout must be positive, got {job_timeout}")
        self._engine = engine
        # The runner of each kind of request this worker takes (no upscaler: no upscales).
        self._runners: dict[str, RunnerProtocol] = {DRAW: engine}
        if upscaler is not None:
            self._runners[UPSCALE] = upscaler
        self._queue_size = queue_size
        self._max_batch = max_batch
        self._job_timeout = job_timeout
        self._heartbeat_file = Path(heartbeat_file) if heartbeat_file is not None else None
        self._heartbeat_interval = heartbeat_interval
        self._last_beat = float("-inf")
        self._heartbeat_warned = False
        self._previews = previews

        self._cond = threading.Condition()
        self._intake: FairQueue[_Job] = FairQueue(queue_size)  # guarded by _cond
        self._running: list[_Job] = []  # guarded by _cond
        self._run_started: float | None = None  # guarded by _cond
        self._closed = False  # no more submissions
        self._stopping = False  # the thread should take the sentinel
        self._abort = threading.Event()  # stop(timeout) ran out: cancel the running batch
        self._interrupted: list[int] = []  # running job ids cut short by stop()

        self._ema_run: float | None = None
        self._healthy = True
        self._fatal_error: BaseException | None = None
        self.on_fatal: Callable[[BaseException], None] | None = None

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ---- loop side -------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start the worker thread; callbacks and futures belong to `loop` (default: running)."""
        if self._thread is not None:
            raise RuntimeError("the generation worker is already started")
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        # Daemon: a hung device call must not keep a dying process alive.
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def submit(
        self,
        job_id: int,
        user_id: int,
        request: GenerationRequest,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        on_start: Callable[[], None] | None = None,
        alone: bool = False,
    ) -> Ticket:
        """Queue a job (loop thread only). Raises `QueueFullError` at once when full.

        `alone`: run it in a batch of its own (a job suspected of crashing its batch). A kind
        of request this worker has no runner for raises `UpscalerOffError` at once."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("start() the generation worker before submitting jobs")
        if request.kind not in self._runners:
            raise UpscalerOffError(f"this generation worker runs no {request.kind} jobs")
        with self._cond:
            if self._closed:
                raise WorkerStoppedError("the generation worker is stopped")
            if self._intake.full:
                raise QueueFullError(f"the generation queue is full ({self._queue_size} jobs)")
            if job_id in self._intake or any(job.job_id == job_id for job in self._running):
                raise ValueError(f"job {job_id} is already queued or running")
            job = _Job(
                job_id=job_id,
                user_id=user_id,
                request=request,
                future=loop.create_future(),
                on_progress=on_progress,
                on_start=on_start,
                submitted_at=time.monotonic(),
            )
            self._intake.push(
                job,
                job_id=job_id,
                user_id=user_id,
                key=("alone", job_id) if alone else request.batch_key(),
                weight=request.count,  # `max_batch` counts pictures
            )
            self._cond.notify()

        def cancel() -> bool:
            return self._cancel(job)

        # Cancelling the future itself (e.g. a task awaiting it was cancelled) cancels the job.
        job.future.add_done_callback(lambda fut: cancel() if fut.cancelled() else None)
        return Ticket(job_id=job_id, future=job.future, _cancel=cancel)

    def cancel(self, job_id: int) -> bool:
        """Cancel a queued or running job by id (as its handle's `cancel`); False if unknown."""
        with self._cond:
            job = next((j for j in self._running if j.job_id == job_id), None)
            if job is None:
                job = next((j for j in self._intake if j.job_id == job_id), None)
        return job is not None and self._cancel(job)

    @property
    def max_batch(self) -> int:
        return self._max_batch

    def position(self, job_id: int) -> int | None:
        """0 running, 1 in the next batch, ... in the scheduler's order; None if unknown."""
        with self._cond:
            return self._position_locked(job_id)

    def eta_seconds(self, job_id: int) -> float | None:
        """Seconds until this job's result is expected (`generation.generator.eta_seconds`: the
        rest of the running batch, then one average run per batch ahead and its own); None
        before any run was measured."""
        with self._cond:
            position = self._position_locked(job_id)
            ema = self._ema_run
            run_started = self._run_started
        if position is None:
            return None
        running_for = None if run_started is None else time.monotonic() - run_started
        return eta_seconds(position, ema, running_for=running_for)

    @property
    def queued(self) -> int:
        """Jobs waiting to run (not counting the running batch)."""
        with self._cond:
            return len(self._intake)

    @property
    def running(self) -> int:
        """Jobs in the batch the engine is running now."""
        with self._cond:
            return len(self._running)

    @property
    def healthy(self) -> bool:
        """False once a device error other than out-of-memory happened."""
        return self._healthy

    @property
    def fatal_error(self) -> BaseException | None:
        """The error that made the worker unhealthy, if any."""
        return self._fatal_error

    async def stop(self, *, timeout: float | None = None) -> list[int]:  # noqa: ASYNC109
        """Stop intake, let the running batch finish (cancel it after `timeout`), join the thread.

        Returns the ids of jobs that did not run (still queued, or cut short by the timeout);
        their futures fail with `WorkerStoppedError` and they stay queued on disk. (`timeout`
        bounds the running batch, as docs/DESIGN.md names it, hence the ASYNC109 waiver.)
        """
        with self._cond:
            self._closed = True
            self._stopping = True
            drained = self._intake.drain()
            self._cond.notify_all()
        stopped = WorkerStoppedError("the generation worker stopped before this job ran")
        for job in drained:
            _log_finished(job, None, 0, stopped)
            self._settle(job, error=stopped)
        thread = self._thread
        hung: list[_Job] = []
        if thread is not None and not await _join(thread, timeout):
            log.warning("stop: the running batch outlived %ss; cancelling it", timeout)
            self._abort.set()
            if not await _join(thread, ABORT_GRACE_SECONDS):
                log.error("stop: the generation thread did not stop; leaving it behind")
                # The thread will not settle its batch in time: fail it here (a late outcome
                # from the thread is then ignored) and report it as cut short.
                with self._cond:
                    hung = list(self._running)
                left = WorkerStoppedError("the generation worker stopped while this job ran")
                for job in hung:
                    _log_finished(job, None, len(hung), left)
                    self._settle(job, error=left)
        ids = [job.job_id for job in (*drained, *hung)]
        return ids + [job_id for job_id in self._interrupted if job_id not in ids]

    def _cancel(self, job: _Job) -> bool:
        with self._cond:
            if self._intake.remove(job.job_id) is not None:
                queued = True
            elif job in self._running:
                job.cancel_requested.set()
                return True
            else:
                return False
        if queued:
            error = JobCancelledError(f"job {job.job_id} was cancelled while queued")
            _log_finished(job, None, 0, error)
            self._settle(job, error=error)
        return True

    def _position_locked(self, job_id: int) -> int | None:
        if any(job.job_id == job_id for job in self._running):
            return 0
        # The scheduler replayed on a copy: the order it will actually run the queue in.
        return self._intake.positions(self._max_batch).get(job_id)

    # ---- thread side -----------------------------------------------------------------------

    def _run(self) -> None:
        """The worker thread: take a batch or the sentinel, run it, repeat."""
        log.info(
            "generation worker started: device=%s max_batch=%s queue_size=%s",
            getattr(self._engine, "device", "?"),
            self._max_batch,
            self._queue_size,
        )
        self._beat()
        while True:
            batch = self._take()
            if batch is _STOP:
                break
            self._run_batch(batch)
            if not self._healthy:
                break
        log.info("generation worker stopped")

    def _take(self) -> Any:
        """Block for the next batch (or the sentinel), touching the heartbeat while idle."""
        while True:
            with self._cond:
                if self._stopping:
                    return _STOP
                if len(self._intake):
                    batch = self._intake.take(self._max_batch)
                    self._running = batch
                    self._run_started = time.monotonic()
                    return batch
                self._cond.wait(self._heartbeat_interval)
            self._beat()

    def _run_batch(self, batch: list[_Job]) -> None:
        started = self._run_started or time.monotonic()
        for job in batch:
            job.started_at = started
            if job.on_start is not None:
                self._post(job.on_start)

        previews = BatchPreviews(self._previews, [job.request.count for job in batch])

        def on_step(step: int, total: int, peek: Peek | None = None) -> None:
            self._beat()
            elapsed = time.monotonic() - started
            shown = previews.take(step, total, elapsed, peek)  # decoded here, off the loop
            for job, preview in zip(batch, shown, strict=True):
                if job.on_progress is not None and not job.cancel_requested.is_set():
                    progress = Progress(job.job_id, step, total, elapsed, preview)
                    self._post(job.on_progress, progress)

        # The engine answers one entry per picture: a job of count n gets n of them.
        images = sum(job.request.count for job in batch)

        def is_cancelled(index: int) -> bool:
            job = batch[index]
            if job.cancel_requested.is_set() or self._abort.is_set():
                return True
            # The limit counts per image: a batch of n has n times as long as one job alone.
            if time.monotonic() - started > self._job_timeout * images:
                job.timed_out = True
                return True
            return False

        requests = [job.request for job in batch]
        runner = self._runners[requests[0].kind]  # a batch holds one kind (its batch key)
        fatal: FatalDeviceError | None = None
        try:
            pictures: list[Any] = list(
                runner.generate(requests, on_step=on_step, is_cancelled=is_cancelled)
            )
            if len(pictures) != images:
                raise GenerationError(
                    f"the engine returned {len(pictures)} results for {images} pictures"
                )
            entries: list[Any] = []
            for job in batch:  # each job's pictures, in order
                entries.append(pictures[: job.request.count])
                del pictures[: job.request.count]
        except OutOfMemoryError as exc:
            log.warning("out of memory on a batch of %s; failing only that batch", len(batch))
            entries = [exc] * len(batch)
        except FatalDeviceError as exc:
            fatal = exc
            entries = [exc] * len(batch)
        except GenerationError as exc:
            if not isinstance(exc, JobCancelledError):
                log.error("batch of %s failed: %s", len(batch), exc)
            entries = [exc] * len(batch)
        except Exception as exc:
            entries = [self._classify(exc, len(batch))] * len(batch)
            if isinstance(entries[0], FatalDeviceError):
                fatal = entries[0]
        run_seconds = time.monotonic() - started
        # Leave `_running` before deciding outcomes: a cancel() from now on answers False
        # (too late), and one that answered True has set the flag `_outcome` reads.
        with self._cond:
            self._running = []
            self._run_started = None

        outcomes = [
            self._outcome(job, entry, run_seconds, images)
            for job, entry in zip(batch, entries, strict=True)
        ]
        if fatal is None and all(isinstance(o, GenerationResult) for o in outcomes):
            # Only whole runs teach the average: a cancelled or failed run is not typical.
            self._ema_run = (
                run_seconds
                if self._ema_run is None
                else EMA_ALPHA * run_seconds + (1 - EMA_ALPHA) * self._ema_run
            )
        # Turn unhealthy before any future settles, so whoever sees the error sees the state.
        drained = self._turn_unhealthy(fatal) if fatal is not None else []
        for job, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, WorkerStoppedError):
                self._interrupted.append(job.job_id)
            _log_finished(job, run_seconds, len(batch), outcome)
            if isinstance(outcome, GenerationResult):
                self._settle(job, result=outcome)
            else:
                self._settle(job, error=outcome)
        if fatal is not None:
            stopped = WorkerStoppedError("the generation worker failed before this job ran")
            for job in drained:
                _log_finished(job, None, 0, stopped)
                self._settle(job, error=stopped)
            if self.on_fatal is not None:
                self._post(self.on_fatal, fatal)

    def _classify(self, exc: Exception, size: int) -> GenerationError:
        """Map an exception the engine did not translate onto the worker's error classes."""
        message = str(exc)
        if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in message.lower():
            log.warning("out of memory on a batch of %s: %s", size, message)
            error: GenerationError = OutOfMemoryError(message)
        elif "cuda" in message.lower():
            error = FatalDeviceError(message)
        else:
            log.exception("unexpected error in a batch of %s", size)
            error = GenerationError(f"unexpected {type(exc).__name__}: {message}")
        error.__cause__ = exc
        return error

    def _outcome(
        self, job: _Job, entry: Any, run_seconds: float, size: int
    ) -> GenerationResult | GenerationError:
        """What this job's future gets. A stop the worker asked for wins over what came back.

        `entry` is the job's list of pictures (or one error for the whole batch). A job gets
        the pictures that came out; only when none did does it fail, with its first error.
        """
        if job.cancel_requested.is_set():
            return JobCancelledError(f"job {job.job_id} was cancelled while running")
        pictures: list[Any] = entry if isinstance(entry, list) else [entry]  # pyright: ignore[reportUnknownVariableType]
        images = tuple(p for p in pictures if isinstance(p, GeneratedImage))
        if not images:
            error = pictures[0] if pictures else None
            if not isinstance(error, GenerationError):
                kind = type(error).__name__
                return GenerationError(f"the engine returned {kind}, not an image")
            # The worker asked the engine to stop this member: say why, not just "cancelled".
            if self._abort.is_set() and isinstance(error, JobCancelledError):
                return WorkerStoppedError("the generation worker stopped while this job ran")
            if job.timed_out and isinstance(error, JobCancelledError):
                limit = self._job_timeout * size
                return JobTimeoutError(f"job {job.job_id} ran over {limit:g} s")
            return error
        if len(images) < len(pictures):
            log.info("job=%s: %d of %d pictures came out", job.job_id, len(images), len(pictures))
        assert job.started_at is not None
        return GenerationResult(
            job_id=job.job_id,
            images=images,
            queued_seconds=job.started_at - job.submitted_at,
            run_seconds=run_seconds,
            batch_size=size,
            model=self._runners[job.request.kind].model,  # what made it: engine or upscaler
        )

    def _turn_unhealthy(self, error: FatalDeviceError) -> list[_Job]:
        """Record the fatal error, close intake and return the queued jobs, now never to run."""
        log.critical("device failed; the generation worker is unhealthy: %s", error)
        self._fatal_error = error
        self._healthy = False  # from here on the heartbeat goes stale
        with self._cond:
            self._closed = True
            self._stopping = True
            return self._intake.drain()

    def _beat(self) -> None:
        """Touch the heartbeat file, at most every half interval, only while healthy and running."""
        if self._heartbeat_file is None or not self._healthy or self._stopping:
            return
        now = time.monotonic()
        if now - self._last_beat < self._heartbeat_interval / 2:
            return
        self._last_beat = now
        try:
            self._heartbeat_file.touch()
        except OSError as exc:
            if not self._heartbeat_warned:
                self._heartbeat_warned = True
                log.warning("cannot touch heartbeat file %s: %s", self._heartbeat_file, exc)

    # ---- crossing back to the loop ---------------------------------------------------------

    def _post(self, callback: Callable[..., object], *args: object) -> None:
        """Run `callback(*args)` on the loop; a closed loop means nobody is listening."""
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            log.debug("event loop closed; dropped %r", callback)

    def _settle(
        self,
        job: _Job,
        *,
        result: GenerationResult | None = None,
        error: BaseException | None = None,
    ) -> None:
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            _resolve(job.future, result, error)
        else:
            self._post(_resolve, job.future, result, error)


def _resolve(
    future: asyncio.Future[GenerationResult],
    result: GenerationResult | None,
    error: BaseException | None,
) -> None:
    """Set a future's outcome unless it is already done (e.g. cancelled by its awaiter)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]


async def _join(thread: threading.Thread, limit: float | None) -> bool:
    """Wait for `thread` to end without blocking the loop; False if `limit` seconds ran out."""
    deadline = None if limit is None else time.monotonic() + limit
    while thread.is_alive():
        if deadline is not None and time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_JOIN_POLL_SECONDS)
    thread.join()  # already ended; this only reaps it
    return True


def _log_finished(
    job: _Job,
    run_seconds: float | None,
    batch: int,
    outcome: GenerationResult | BaseException,
) -> None:
    """The one summary line per finished job."""
    started = job.started_at if job.started_at is not None else time.monotonic()
    name = "done" if isinstance(outcome, GenerationResult) else getattr(outcome, "code", "error")
    log.info(
        "job=%s user=%s queued=%.2fs run=%.2fs steps=%s batch=%s outcome=%s",
        job.job_id,
        job.user_id,
        started - job.submitted_at,
        run_seconds or 0.0,
        job.request.steps,
        batch,
        name,
    )
