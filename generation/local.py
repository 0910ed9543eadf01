"""`ThreadGenerator`: the `Generator` protocol over the in-process `generation-worker` thread.

The default: one process, nothing else to run. The worker thread keeps its own futures and
callbacks (see `generation/worker.py`); this adapter turns them into a `JobHandle`'s events and
republishes queue places whenever the queue moves (a job starts or leaves), so a waiting user
sees their place go down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from generation import metrics
from generation.generator import GeneratorStatus, JobHandle, Places, outcome_of
from generation.types import GenerationRequest, GenerationResult

if TYPE_CHECKING:
    from generation.worker import GenerationWorker

log = logging.getLogger(__name__)


class ThreadGenerator:
    """The in-process generator. `worker` is a `GenerationWorker`, started by `start()`."""

    def __init__(self, worker: GenerationWorker) -> None:
        self.worker = worker
        self.on_fatal: Callable[[BaseException], None] | None = None
        self._handles: dict[int, JobHandle] = {}
        self._places = Places()

    async def start(self) -> None:
        self.worker.on_fatal = self._fatal
        self.worker.start(asyncio.get_running_loop())
        self._update_gauges()

    async def submit(self, job_id: int, user_id: int, request: GenerationRequest) -> JobHandle:
        handle = JobHandle(job_id, lambda: self._cancel(job_id))
        inner = self.worker.submit(
            job_id,
            user_id,
            request,
            on_progress=handle.publish,
            on_start=lambda: self._started(handle, request.steps),
        )
        self._handles[job_id] = handle
        inner.future.add_done_callback(lambda fut: self._finished(handle, fut))
        self._publish_place(job_id)
        self._update_gauges()
        return handle

    def handle(self, job_id: int) -> JobHandle | None:
        return self._handles.get(job_id)

    async def status(self) -> GeneratorStatus:
        worker = self.worker
        healthy = worker.healthy
        return GeneratorStatus(
            healthy=healthy,
            queued=worker.queued,
            running=worker.running,
            workers=1 if healthy else 0,
            capacity=worker.max_batch if healthy else 0,
            detail="" if healthy else f"the generation worker failed: {worker.fatal_error}",
        )

    async def stop(self, *, timeout: float | None = None) -> list[int]:  # noqa: ASYNC109
        return await self.worker.stop(timeout=timeout)

    # ---- internals ---------------------------------------------------------------------

    def _cancel(self, job_id: int) -> bool:
        return self.worker.cancel(job_id)

    def _fatal(self, error: BaseException) -> None:
        self._update_gauges()
        if self.on_fatal is not None:
            self.on_fatal(error)

    def _started(self, handle: JobHandle, steps: int) -> None:
        self._places.started(handle, steps)
        self._refresh_places()

    def _finished(self, handle: JobHandle, future: asyncio.Future[GenerationResult]) -> None:
        self._handles.pop(handle.job_id, None)
        self._places.forget(handle.job_id)
        handle.publish(outcome_of(future))
        self._refresh_places()

    def _publish_place(self, job_id: int) -> None:
        handle = self._handles.get(job_id)
        position = self.worker.position(job_id)
        if handle is None or position is None or position == 0:
            return
        self._places.show(handle, position, self.worker.eta_seconds(job_id))

    def _refresh_places(self) -> None:
        for job_id in list(self._handles):
            self._publish_place(job_id)
        self._update_gauges()

    def _update_gauges(self) -> None:
        """The Prometheus gauges the remote generator also sets (README, "Metrics"): here
        the one in-process worker is the one worker online."""
        worker = self.worker
        metrics.QUEUE_LENGTH.set(worker.queued)
        metrics.RUNNING.set(worker.running)
        metrics.WORKERS_ONLINE.set(1 if worker.healthy else 0)
        metrics.WORKER_CAPACITY.set(worker.max_batch if worker.healthy else 0)
