"""`RemoteGenerator`: the `Generator` protocol over Redis Streams, served by `pokemon-bot worker`s.

The bot loads no model. It keeps the fair queue (`generation.queue.FairQueue`: round-robin
between users) itself and releases jobs to the `P:jobs` stream only while the work in flight is
below about twice what the live workers can hold (the sum of their batch sizes), so fairness
holds and no GPU idles. Workers announce themselves in a registry; with none online, `submit`
raises `GeneratorUnavailableError` at once, as it does while Redis cannot be reached (queued
jobs then wait and the loops reconnect with back-off).

One task reads the `P:events` (started, progress) and `P:results` streams in one XREADGROUP as
the consumer group `bot`, so results written while the bot was down are read when it comes
back: a result whose job has no handle yet is kept (not acknowledged) until the job service
resubmits that job, which then attaches to it instead of running it again. A second result for
a job already finished changes nothing. See `generation/streams.py` for the key layout.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from generation import metrics
from generation.backoff import keep_trying
from generation.errors import (
    GeneratorUnavailableError,
    QueueFullError,
    WorkerStoppedError,
    one_line,
)
from generation.generator import (
    Cancelled,
    Done,
    Failed,
    GeneratorStatus,
    JobHandle,
    Places,
    Queued,
    Started,
    eta_seconds,
)
from generation.queue import FairQueue
from generation.streams import (
    BOT_GROUP,
    CANCEL_TTL_SECONDS,
    CANCELS_MAXLEN,
    JOB_TTL_SECONDS,
    WORKERS_GROUP,
    Entry,
    Keys,
    Reachability,
    WorkerInfo,
    by_stream,
    connect,
    decode_error,
    decode_result,
    encode_request,
    ensure_group,
    field,
    read_workers,
    redis_errors,
    text,
)
from generation.tasks import Tasks
from generation.types import GenerationRequest, Progress

log = logging.getLogger(__name__)

IN_FLIGHT_FACTOR = 2  # release while in flight < this × the live workers' batch sizes
READ_COUNT = 500
READ_BLOCK_MS = 1000
RECENT_IDS = 10_000  # finished job ids remembered, so a late duplicate result is dropped
EMA_ALPHA = 0.3
# A result nobody resubmitted within this (its job was settled otherwise) is dropped.
ORPHAN_MAX_AGE = 86400.0


def _age_seconds(entry_id: bytes) -> float:
    """How old a stream entry is, from the milliseconds in its id."""
    try:
        return time.time() - int(entry_id.split(b"-")[0]) / 1000
    except ValueError:
        return 0.0


@dataclass(eq=False, slots=True)
class _Job:
    job_id: int
    user_id: int
    request: GenerationRequest
    submitted_at: float
    released: bool = False
    started_at: float | None = None


def _owned_by(fields: Mapping[bytes, bytes], user_id: int) -> bool:
    """Whether a result entry is of `user_id`'s job (entries from workers that do not say
    whose it was are taken as they come)."""
    owner = field(fields, "user")
    return not owner or owner == str(user_id)


class RemoteGenerator:
    """The bot side of the remote workers. `url` is `POKEMON_REDIS_URL`."""

    def __init__(
        self,
        url: str,
        *,
        queue_size: int,
        prefix: str = "pokemon",
        consumer: str = "bot",
        refresh_interval: float = 1.0,
        max_backoff: float = 15.0,
        outage_log_interval: float = 60.0,
    ) -> None:
        self.on_fatal: Callable[[BaseException], None] | None = None
        self._url = url
        self._keys = Keys(prefix)
        self._consumer = consumer
        self._refresh_interval = refresh_interval
        self._max_backoff = max_backoff
        self._client: Any = None
        self._queue: FairQueue[_Job] = FairQueue(queue_size)
        self._retry: collections.deque[_Job] = collections.deque()  # release first
        self._jobs: dict[int, _Job] = {}  # every job with a handle here
        self._handles: dict[int, JobHandle] = {}
        self._in_flight: set[int] = set()  # released to Redis, not finished
        self._orphans: dict[int, tuple[bytes, Mapping[bytes, bytes]]] = {}
        self._recent: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._cancels: dict[int, None] = {}  # cancels not yet written to Redis, in order
        self._places = Places()
        self._workers: list[WorkerInfo] = []
        self._connected = False
        self._redis = Reachability(
            url,
            impact="no job can be sent to a GPU worker until it is back",
            repeat=outage_log_interval,
        )
        self._closed = False  # no more submits
        self._halted = False  # the loops end
        self._wake = asyncio.Event()
        self._workers_seen = asyncio.Event()
        self._tasks = Tasks("remote generator")
        self._replay: dict[str, bytes | str] | None = None  # the read loop's own pending entries
        self._last_refresh = 0.0
        self._ema_run: float | None = None

    # ---- the protocol --------------------------------------------------------------------------

    async def start(self) -> None:
        self._client = connect(self._url)
        try:
            await self._prepare()
            await self._refresh_workers()
        except redis_errors() as exc:  # said in the log now; the loops keep trying
            self._went_down(exc)
        self._tasks.spawn(self._keep_trying(self._read_once), name="remote-generator-read")
        self._tasks.spawn(self._keep_trying(self._pump_once), name="remote-generator-pump")

    async def submit(self, job_id: int, user_id: int, request: GenerationRequest) -> JobHandle:
        if self._closed:
            raise WorkerStoppedError("the generator is stopped")
        if job_id in self._handles:
            raise ValueError(f"job {job_id} is already queued or running")
        orphan = self._orphans.pop(job_id, None)
        if orphan is not None and not _owned_by(orphan[1], user_id):
            # Another job that once had this id (the bot's database was restored or reset).
            log.warning("job=%s: dropping a result of another user's job with this id", job_id)
            await self._drop_result(orphan[0])
            orphan = None
        if orphan is not None:  # finished while the bot was down: hand it over now
            handle = self._adopt(job_id, user_id, request, released=True)
            await self._settle(job_id, *orphan)
            return handle
        if not self._connected:
            raise GeneratorUnavailableError(f"generation is unavailable: {self._redis.reason}")
        try:
            state, owner = (
                text(value)
                for value in await self._client.hmget(self._keys.job(job_id), ["state", "user"])
            )
        except redis_errors() as exc:
            self._went_down(exc)
            raise GeneratorUnavailableError(f"generation is unavailable: {one_line(exc)}") from exc
        if owner and owner != str(user_id):  # another job's entry under this id: not ours
            log.warning("job=%s: Redis holds another user's job with this id; sending anew", job_id)
            state = None
        if state in {"queued", "running", "done"}:  # released before a restart: attach to it
            handle = self._adopt(job_id, user_id, request, released=True)
            self._in_flight.add(job_id)
            if state == "running":
                self._jobs[job_id].started_at = time.monotonic()
                self._places.started(handle, request.steps)
            else:
                handle.publish(Queued(1, None))
            log.info("job=%s attached to its remote entry (%s)", job_id, state)
            return handle
        if not self._workers:
            raise GeneratorUnavailableError("no generation worker is online")
        if self._queue.full:
            raise QueueFullError(f"the generation queue is full ({self._queue.capacity} jobs)")
        job = _Job(job_id, user_id, request, time.monotonic())
        self._queue.push(
            job,
            job_id=job_id,
            user_id=user_id,
            key=request.batch_key(),
            weight=request.count,  # as the worker's batches count pictures
        )
        handle = self._adopt(job_id, user_id, request, job=job)
        self._refresh_places()
        self._wake.set()
        return handle

    def handle(self, job_id: int) -> JobHandle | None:
        return self._handles.get(job_id)

    async def status(self) -> GeneratorStatus:
        released = [self._jobs[i] for i in self._in_flight if i in self._jobs]
        running = sum(1 for job in released if job.started_at is not None)
        workers = len(self._workers)
        if not self._connected:
            detail = f"Redis is unreachable: {self._redis.reason}"
        elif not workers:
            detail = "no generation worker is online"
        else:
            detail = ""
        return GeneratorStatus(
            healthy=self._connected and workers > 0,
            queued=len(self._queue) + len(self._retry) + len(released) - running,
            running=running,
            workers=workers,
            capacity=self._capacity(),
            detail=detail,
        )

    async def stop(self, *, timeout: float | None = None) -> list[int]:  # noqa: ASYNC109
        """Stop intake. Jobs still held here fail with `WorkerStoppedError`; released ones that
        run on a worker get until `timeout` to finish. The ids of all unfinished jobs come back:
        resubmitted after a restart, released ones attach to their entry (nothing runs twice)."""
        self._closed = True
        held = [*self._retry, *self._queue.drain()]
        self._retry.clear()
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._running_jobs() and self._workers and self._connected:
            if deadline is not None and time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        self._halted = True
        await self._tasks.close()
        # A release cut short by the cancel went back to the retry list: unfinished too.
        held.extend(job for job in self._retry if job not in held)
        self._retry.clear()
        left = [job.job_id for job in held] + sorted(self._in_flight)
        stopped = WorkerStoppedError("the generator stopped before this job finished")
        for job_id in left:
            handle = self._handles.pop(job_id, None)
            if handle is not None:
                handle.publish(Failed(stopped))
        if self._client is not None:
            with contextlib.suppress(*redis_errors()):
                await self._client.aclose()
        return left

    # ---- extras for tests, `doctor` and the scale benchmark ---------------------------------------

    @property
    def stopped(self) -> bool:
        return self._closed

    @property
    def workers(self) -> list[WorkerInfo]:
        return list(self._workers)

    async def wait_for_workers(self, count: int = 1, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Until the registry shows `count` live workers (raises TimeoutError)."""
        async with asyncio.timeout(timeout):
            while len(self._workers) < count:
                self._workers_seen.clear()
                await self._workers_seen.wait()

    # ---- internals: jobs -------------------------------------------------------------------------

    def _adopt(
        self,
        job_id: int,
        user_id: int,
        request: GenerationRequest,
        *,
        released: bool = False,
        job: _Job | None = None,
    ) -> JobHandle:
        if job is None:
            job = _Job(job_id, user_id, request, time.monotonic(), released=released)
        self._jobs[job_id] = job
        handle = JobHandle(job_id, lambda: self._cancel(job_id))
        self._handles[job_id] = handle
        return handle

    def _cancel(self, job_id: int) -> bool:
        job = self._jobs.get(job_id)
        if job is None:
            return False
        held = self._queue.remove(job_id) is not None
        if not held and job in self._retry:
            self._retry.remove(job)
            held = True
        if held:
            self._finish(job_id, Cancelled())
            return True
        if job_id in self._in_flight:
            self._cancels[job_id] = None
            self._wake.set()
            return True
        return False

    def _finish(self, job_id: int, event: Done | Failed | Cancelled) -> None:
        job = self._jobs.pop(job_id, None)
        handle = self._handles.pop(job_id, None)
        self._in_flight.discard(job_id)
        self._cancels.pop(job_id, None)
        self._places.forget(job_id)
        self._recent[job_id] = None
        while len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)
        if handle is not None:
            if isinstance(event, Done) and job is not None and job.started_at is None:
                handle.publish(Started(total_steps=job.request.steps))  # its events were trimmed
            handle.publish(event)
        self._refresh_places()
        self._wake.set()

    def _running_jobs(self) -> list[int]:
        return [i for i in self._in_flight if (job := self._jobs.get(i)) and job.started_at]

    def _capacity(self) -> int:
        return sum(worker.max_batch for worker in self._workers)

    def _refresh_places(self) -> None:
        released_waiting = any(
            job.started_at is None for i in self._in_flight if (job := self._jobs.get(i))
        )
        ahead = 1 if released_waiting else 0
        places = {i: p + ahead for i, p in self._queue.positions(max(1, self._capacity())).items()}
        for job in self._retry:
            if job.started_at is None:  # one sent again after it started stays started
                places[job.job_id] = 1
        for job_id in self._in_flight:
            job = self._jobs.get(job_id)
            if job is not None and job.started_at is None:
                places[job_id] = 1
        workers = len(self._workers)
        started = [job.started_at for i in self._in_flight if (job := self._jobs.get(i))]
        oldest = min((at for at in started if at is not None), default=None)
        running_for = None if oldest is None else time.monotonic() - oldest
        for job_id, place in places.items():
            handle = self._handles.get(job_id)
            if handle is not None:
                eta = eta_seconds(place, self._ema_run, workers=workers, running_for=running_for)
                self._places.show(handle, place, eta)
        metrics.QUEUE_LENGTH.set(len(places))
        metrics.RUNNING.set(len(self._running_jobs()))

    # ---- internals: Redis ------------------------------------------------------------------------

    async def _prepare(self) -> None:
        """Groups for the streams (MKSTREAM), then mark the connection up."""
        client, keys = self._client, self._keys
        await ensure_group(client, keys.jobs, WORKERS_GROUP)
        await ensure_group(client, keys.results, BOT_GROUP)
        await ensure_group(client, keys.events, BOT_GROUP, start="$")
        if not self._connected and not self._redis.down:
            log.info("connected to Redis at %s", self._redis.where)
        self._redis.reached()
        self._connected = True

    def _went_down(self, exc: BaseException) -> None:
        """Redis could not be reached: new jobs are refused, and the log says so (once, then
        once a minute while it lasts: `Reachability`)."""
        self._redis.failed(exc)
        self._connected = False

    async def _keep_trying(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` until the generator halts (`keep_trying`: Redis unreachable marks it
        down; Redis lost its groups (NOGROUP): they are made again at once)."""

        def lost_groups(exc: Exception) -> bool:
            if "NOGROUP" not in str(exc):
                return False
            self._connected = False  # the next step prepares the groups again
            return True

        await keep_trying(
            step,
            running=lambda: not self._halted,
            unreachable=self._went_down,
            handled=lost_groups,
            cap=self._max_backoff,
        )

    async def _read_once(self) -> None:
        """One read of the events and results streams: first this consumer's own pending
        entries (after a (re)connect), then new ones, blocking up to `READ_BLOCK_MS`."""
        if not self._connected:
            await self._prepare()
            self._replay = None
        if self._replay is None:
            self._replay = {self._keys.events: "0", self._keys.results: "0"}
        if self._replay:
            reply = await self._client.xreadgroup(
                BOT_GROUP, self._consumer, self._replay, count=READ_COUNT
            )
            done = True
            for stream, entries in by_stream(reply).items():
                if entries:
                    self._replay[stream] = entries[-1][0]
                    done = False
            if done:
                self._replay = {}
        else:
            reply = await self._client.xreadgroup(
                BOT_GROUP,
                self._consumer,
                {self._keys.events: ">", self._keys.results: ">"},
                count=READ_COUNT,
                block=READ_BLOCK_MS,
            )
        await self._handle_reply(by_stream(reply))

    async def _handle_reply(self, reply: dict[str, list[Entry]]) -> None:
        events = reply.get(self._keys.events, [])
        if events:
            for _entry_id, fields in events:
                if fields:
                    self._on_event(fields)
            await self._client.xack(self._keys.events, BOT_GROUP, *[e[0] for e in events])
        for entry_id, fields in reply.get(self._keys.results, []):
            if not fields:  # deleted while pending
                await self._client.xack(self._keys.results, BOT_GROUP, entry_id)
                continue
            try:
                job_id = int(field(fields, "job"))
            except ValueError:
                log.error("dropping a result entry without a job id: %r", entry_id)
                await self._client.xack(self._keys.results, BOT_GROUP, entry_id)
                continue
            await self._settle(job_id, entry_id, fields)

    def _on_event(self, fields: Mapping[bytes, bytes]) -> None:
        try:
            job_id = int(field(fields, "job"))
            step, total = int(field(fields, "step") or 0), int(field(fields, "total") or 0)
        except ValueError:
            return
        handle, job = self._handles.get(job_id), self._jobs.get(job_id)
        if handle is None or job is None:
            return
        if field(fields, "type") == "started":
            if job.started_at is None:
                job.started_at = time.monotonic()
                self._places.started(handle, total)
                self._refresh_places()
        elif field(fields, "type") == "progress" and job.started_at is not None:
            handle.publish(Progress(job_id, step, total, float(field(fields, "elapsed") or 0)))

    async def _drop_result(self, entry_id: bytes) -> None:
        keys = self._keys
        await self._client.xack(keys.results, BOT_GROUP, entry_id)
        await self._client.xdel(keys.results, entry_id)

    async def _settle(self, job_id: int, entry_id: bytes, fields: Mapping[bytes, bytes]) -> None:
        """A result entry: hand it to the job's handle and acknowledge it, keep it for a job
        not resubmitted yet, or drop a duplicate."""
        keys = self._keys
        if job_id not in self._handles:
            duplicate = job_id in self._recent
            if not duplicate:
                state = text(await self._client.hget(keys.job(job_id), "state"))
                duplicate = state == "delivered"
            stale = _age_seconds(entry_id) > ORPHAN_MAX_AGE
            if duplicate or stale:
                log.info(
                    "job=%s: dropping %s result",
                    job_id,
                    "a duplicate" if duplicate else "an unclaimed old",
                )
                await self._drop_result(entry_id)
            else:  # finished while the bot was down: kept until its job is resubmitted
                self._orphans[job_id] = (entry_id, fields)
            return
        job = self._jobs[job_id]
        if not _owned_by(fields, job.user_id):  # another job's that once had this id
            log.warning("job=%s: dropping a result of another user's job with this id", job_id)
            await self._drop_result(entry_id)
            return
        kind = field(fields, "type")
        if kind == "done":
            result = decode_result(fields)
            queued = (job.started_at or time.monotonic()) - job.submitted_at
            result = replace(result, job_id=job_id, queued_seconds=queued)
            run = result.run_seconds
            self._ema_run = (
                run if self._ema_run is None else EMA_ALPHA * run + (1 - EMA_ALPHA) * self._ema_run
            )
            self._finish(job_id, Done(result))
        elif kind == "cancelled":
            self._finish(job_id, Cancelled())
        else:
            self._finish(job_id, Failed(decode_error(fields)))
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(keys.job(job_id), "state", "delivered")
            pipe.expire(keys.job(job_id), CANCEL_TTL_SECONDS)
            pipe.xack(keys.results, BOT_GROUP, entry_id)
            pipe.xdel(keys.results, entry_id)
            await pipe.execute()

    async def _pump_once(self) -> None:
        """Wait to be woken (or `refresh_interval`), then refresh the registry, write cancels and
        release jobs while there is room."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._refresh_interval):
                await self._wake.wait()
        self._wake.clear()
        try:
            if not self._connected:
                await self._prepare()
            if time.monotonic() - self._last_refresh >= self._refresh_interval:
                await self._refresh_workers()
                await self._resend_lost()
                self._last_refresh = time.monotonic()
            await self._send_cancels()
            await self._release()
        finally:
            self._refresh_places()

    async def _refresh_workers(self) -> None:
        workers = await read_workers(self._client, self._keys)
        if len(workers) != len(self._workers):
            log.info("generation workers online: %s", len(workers))
        self._workers = workers
        metrics.WORKERS_ONLINE.set(len(workers))
        metrics.WORKER_CAPACITY.set(self._capacity())
        self._workers_seen.set()

    async def _resend_lost(self) -> None:
        """Jobs in flight whose `P:job:ID` hash is gone: Redis lost its data (FLUSHALL, or a
        crash that lost the last writes), so their entries are gone too and nothing would ever
        finish them. They go back to the front, in their order, to be sent again; a worker that
        still runs one finds it finished by its hash and does not run it twice."""
        job_ids = sorted(self._in_flight)
        if not job_ids:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.exists(self._keys.job(job_id))
            found = await pipe.execute()
        lost = [
            job
            for job_id, there in zip(job_ids, found, strict=True)
            if not there and job_id in self._in_flight and (job := self._jobs.get(job_id))
        ]
        if not lost:
            return
        log.warning("Redis lost %s jobs in flight; sending them again", len(lost))
        for job in sorted(lost, key=lambda job: job.submitted_at, reverse=True):
            self._in_flight.discard(job.job_id)
            if job.job_id in self._cancels:  # cancelled meanwhile: nothing left to stop
                self._finish(job.job_id, Cancelled())
            else:
                self._retry.appendleft(job)

    async def _send_cancels(self) -> None:
        """Write the cancels asked for, in their order, in one transaction."""
        if not self._cancels:
            return
        keys, job_ids = self._keys, list(self._cancels)
        async with self._client.pipeline(transaction=True) as pipe:
            for job_id in job_ids:
                pipe.set(keys.cancel(job_id), "1", ex=CANCEL_TTL_SECONDS)
                pipe.xadd(keys.cancels, {"job": str(job_id)}, maxlen=CANCELS_MAXLEN)
            await pipe.execute()
        for job_id in job_ids:
            self._cancels.pop(job_id, None)

    async def _release(self) -> None:
        limit = IN_FLIGHT_FACTOR * self._capacity()
        while len(self._in_flight) < limit and not self._closed:
            if self._retry:
                job = self._retry.popleft()
            elif len(self._queue):
                job = self._queue.take(1)[0]
            else:
                return
            # In flight from here on, so a cancel during the write is sent once it landed.
            self._in_flight.add(job.job_id)
            try:
                await self._release_one(job)
            except BaseException:
                self._in_flight.discard(job.job_id)
                if job.job_id in self._cancels:  # cancelled while the write failed
                    self._finish(job.job_id, Cancelled())
                else:
                    self._retry.appendleft(job)
                raise

    async def _release_one(self, job: _Job) -> None:
        keys = self._keys
        key = keys.job(job.job_id)
        if job.released and await self._client.exists(key):  # the last try landed after all
            return
        job.released = True
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"state": "queued", "user": str(job.user_id)})
            pipe.expire(key, JOB_TTL_SECONDS)
            pipe.xadd(
                keys.jobs,
                {
                    "job": str(job.job_id),
                    "user": str(job.user_id),
                    "request": encode_request(job.request),
                    "submitted": repr(time.time()),
                },
            )
            await pipe.execute()
