"""The one boundary between the bot and whatever generates: the `Generator` protocol.

The bot submits a request for a user and gets a `JobHandle`; the handle's events tell the job's
life (queue place with an estimate, started, progress, then exactly one of done, failed or
cancelled). Implementations: `generation.local.ThreadGenerator` (the in-process worker thread,
the default) and `generation.remote.RemoteGenerator` (workers on Redis Streams). The contract
tests in `tests/generation/test_generator_contract.py` run against each of them.

Everything here runs on the event loop; implementations cross threads or processes themselves
and only ever call `JobHandle.publish` on the loop.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from generation.errors import GenerationError, JobCancelledError
from generation.types import GenerationRequest, GenerationResult, Progress


@dataclass(frozen=True, slots=True)
class Queued:
    """Waiting: `position` batches before this one runs (1 = next); `eta_seconds` until its
    result is expected, None before anything was measured."""

    position: int
    eta_seconds: float | None


@dataclass(frozen=True, slots=True)
class Started:
    """The job left the queue and runs now (its first progress follows)."""

    total_steps: int


@dataclass(frozen=True, slots=True)
class Done:
    result: GenerationResult


@dataclass(frozen=True, slots=True)
class Failed:
    """The job ended without a picture. `error.code` says why; a `WorkerStoppedError` means the
    generator stopped (shutdown) before finishing it, so the job should be resumed later."""

    error: GenerationError


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The job was cancelled (by `JobHandle.cancel`) before it produced a picture."""


JobEvent = Queued | Started | Progress | Done | Failed | Cancelled
TERMINAL = (Done, Failed, Cancelled)


@dataclass(frozen=True, slots=True)
class GeneratorStatus:
    """What `/stats`, `doctor` and the job service ask of a generator."""

    healthy: bool
    queued: int  # waiting to run (bot side and, for remote, in flight to workers but not started)
    running: int  # running on a device now
    workers: int  # devices that can take work now (1 for the in-process thread while healthy)
    capacity: int  # jobs the live workers can hold at once (sum of their batch sizes)
    detail: str = ""  # one line for an operator when not healthy or no worker is online


class JobHandle:
    """One submitted job: its events, and a way to cancel it.

    Events are buffered, so nothing is lost between `submit` and the first `events()` read.
    Queue places and progress are coalesced: a reader that falls behind sees the newest place
    and the newest step, not every one.
    """

    def __init__(self, job_id: int, cancel: Callable[[], bool]) -> None:
        self.job_id = job_id
        self._cancel = cancel
        self._events: asyncio.Queue[JobEvent] = asyncio.Queue()
        self._latest: dict[type[Queued | Progress], Queued | Progress] = {}
        self._outcome: Done | Failed | Cancelled | None = None
        self._finished = asyncio.get_running_loop().create_future()

    @property
    def outcome(self) -> Done | Failed | Cancelled | None:
        """The terminal event once there is one."""
        return self._outcome

    @property
    def done(self) -> bool:
        return self._outcome is not None

    def cancel(self) -> bool:
        """Queued: it never runs. Running: it stops within one step and nothing is decoded.
        False when it had already finished."""
        if self._outcome is not None:
            return False
        return self._cancel()

    def publish(self, event: JobEvent) -> None:
        """Called by the implementation, on the loop. Events after the terminal one are dropped,
        so a completion that arrives twice changes nothing."""
        if self._outcome is not None:
            return
        if isinstance(event, Queued | Progress):
            kind = type(event)
            first = kind not in self._latest
            self._latest[kind] = event
            if first:
                self._events.put_nowait(event)
            return
        if isinstance(event, Done | Failed | Cancelled):
            self._outcome = event
            _record(event)
            if not self._finished.done():
                self._finished.set_result(event)
        self._events.put_nowait(event)

    async def events(self) -> AsyncIterator[JobEvent]:
        """Every event in order, ending after the terminal one."""
        while True:
            event = await self._events.get()
            if isinstance(event, Queued | Progress):
                event = self._latest.pop(type(event), event)
            yield event
            if isinstance(event, TERMINAL):
                return

    async def wait(self) -> Done | Failed | Cancelled:
        """The terminal event (for callers that do not follow the events)."""
        return await asyncio.shield(self._finished)


def eta_seconds(
    place: int,
    average_run: float | None,
    *,
    workers: int = 1,
    running_for: float | None = None,
) -> float | None:
    """Seconds until the result of a job `place` batches from the front (0 = running, 1 = next)
    is expected: the one estimate every generator shows with its `Queued` places.

        eta = max(0, average_run - running_for) + ceil(place / workers) * average_run

    Each of `workers` devices runs one batch at a time, so the job waits `ceil(place / workers)`
    average runs (its own included) after what is left of the run in progress: the average less
    `running_for`, how long that run has gone (None when nothing runs, or it is not known: then
    nothing is left of it). None before any run was measured (`average_run` None)."""
    if average_run is None:
        return None
    left = 0.0 if running_for is None else max(0.0, average_run - running_for)
    return left + math.ceil(place / max(1, workers)) * average_run


class Places:
    """What each waiting job's handle was last told about its place. A generator passes every
    waiting job's place to `show` whenever its queue moves; a handle hears a new `Queued` only
    when its place changed. `started` tells a handle its job runs now (`Started`, then step 0)."""

    def __init__(self) -> None:
        self._shown: dict[int, int] = {}  # job id -> the place last published

    def show(self, handle: JobHandle, place: int, eta: float | None) -> None:
        if self._shown.get(handle.job_id) == place:
            return
        self._shown[handle.job_id] = place
        handle.publish(Queued(place, eta))

    def started(self, handle: JobHandle, total_steps: int) -> None:
        self._shown.pop(handle.job_id, None)
        handle.publish(Started(total_steps=total_steps))
        handle.publish(Progress(handle.job_id, 0, total_steps, 0.0))

    def forget(self, job_id: int) -> None:
        """The job left (finished, or started elsewhere): its next place is news again."""
        self._shown.pop(job_id, None)


def outcome_of(future: asyncio.Future[GenerationResult]) -> Done | Failed | Cancelled:
    """A finished job's future (a `GenerationResult`, or the `GenerationError` it failed with)
    as its terminal event. A cancelled future or a `JobCancelledError` is `Cancelled`; any
    other exception (the worker raises only `GenerationError`s) is wrapped in one."""
    if future.cancelled():
        return Cancelled()
    error = future.exception()
    if error is None:
        return Done(future.result())
    if isinstance(error, JobCancelledError):
        return Cancelled()
    if isinstance(error, GenerationError):
        return Failed(error)
    wrapped = GenerationError(f"unexpected {type(error).__name__}: {error}")
    wrapped.__cause__ = error
    return Failed(wrapped)


def _record(event: Done | Failed | Cancelled) -> None:
    """Count a job's end in the metrics (generation/metrics.py), whichever generator ran it."""
    from generation import metrics

    if isinstance(event, Done):
        result = event.result
        metrics.record_outcome(
            "done",
            queued=result.queued_seconds,
            run=result.run_seconds,
            images=len(result.images),
        )
    elif isinstance(event, Failed):
        metrics.record_outcome(event.error.code)
    else:
        metrics.record_outcome("cancelled")


class Generator(Protocol):
    """What the bot needs from generation. All methods are called on the event loop."""

    on_fatal: Callable[[BaseException], None] | None
    """Called on the loop when the generator can no longer work (the process should exit)."""

    async def start(self) -> None:
        """Start serving (threads, connections)."""
        ...

    async def submit(self, job_id: int, user_id: int, request: GenerationRequest) -> JobHandle:
        """Queue a job. Raises `QueueFullError` when the bounded queue is full,
        `WorkerStoppedError` after `stop()`, `GeneratorUnavailableError` when nothing can
        generate right now (no worker online, Redis unreachable): each at once."""
        ...

    def handle(self, job_id: int) -> JobHandle | None:
        """The handle of a job still queued or running here, for a cancel by id."""
        ...

    async def status(self) -> GeneratorStatus: ...

    async def stop(self, *, timeout: float | None = None) -> list[int]:  # noqa: ASYNC109
        """Stop intake and finish (or cut short after `timeout`) the running work. Returns the
        ids of jobs that did not finish; they stay queued on disk and resume on the next start."""
        ...
