"""The process behind `pokemon-bot worker`: serves jobs from Redis Streams on one device.

It runs the same `GenerationWorker` thread as the bot's in-process generator (same engine,
same fair queue, same batching of compatible jobs) and feeds it from the `P:jobs` stream:

- reads entries as a member of the consumer group `workers` (XREADGROUP), at most about twice
  its batch size at a time, so a full next batch is always at hand and other workers get the rest;
- keeps the entries it holds fresh (XCLAIM ... JUSTID every few seconds resets their idle time
  without counting a delivery), so a long job is never taken from a live worker;
- takes over entries idle longer than `reclaim_idle` from dead workers (XAUTOCLAIM), and fails
  a job that was started `max_attempts` times without finishing (it crashed or hung every worker
  that ran it) with `PoisonJobError`, noting it in the dead-letter stream `P:dead` (ids,
  counts, reason and the request's numbers; never its prompts or source picture).
  Attempts count runs that started (`P:job:ID` field `attempts`), not deliveries, so jobs that
  only waited in a killed worker's prefetch are not blamed; as a backstop, an entry delivered
  more than `DELIVERY_FACTOR × max_attempts` times is poison too;
- writes each job's started and progress events, and its result with the acknowledgement in one
  atomic script that writes nothing when the job already has a result (a reclaimed job that
  finished twice is reported once);
- follows `P:cancels`, and checks `P:cancel:ID` when it reads an entry, so a cancelled job
  never runs and a running one stops within a step;
- announces itself with a heartbeat hash `P:worker:NAME` (device, model, batch size, jobs done)
  whose TTL lapses when the process dies.

Nothing here imports discord or the bot; `bot/commands_cli/worker.py` is the CLI around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generation import metrics
from generation.backoff import Backoff, keep_trying
from generation.errors import (
    GenerationError,
    PoisonJobError,
    UpscalerOffError,
    WorkerStoppedError,
    one_line,
)
from generation.generator import Cancelled, Done, outcome_of
from generation.preview import PreviewPacing
from generation.streams import (
    DEAD_MAXLEN,
    EVENTS_MAXLEN,
    JOB_TTL_SECONDS,
    WORKERS_GROUP,
    Entry,
    Keys,
    Reachability,
    WorkerInfo,
    by_stream,
    connect,
    dead_letter,
    decode_request,
    encode_error,
    encode_progress,
    encode_result,
    ensure_group,
    field,
    redis_errors,
    text,
)
from generation.tasks import Tasks
from generation.types import GenerationResult, Progress
from generation.worker import EngineProtocol, GenerationWorker, RunnerProtocol

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FATAL = 1
HUNG_GRACE_SECONDS = 30.0  # beyond the job timeout, before a silent engine counts as hung
EARLY_CANCELS = 1024  # cancels remembered for jobs not taken in yet
DELIVERY_FACTOR = 4  # deliveries beyond this × max_attempts: poison even if never started

# Acknowledge the entry and write the result, unless the job already has one: atomic, so a
# job that two workers finished (one was thought dead) is reported exactly once.
# KEYS: job hash, jobs stream, results stream. ARGV: group, entry id, job TTL, result fields.
_COMPLETE = """
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'done' or state == 'delivered' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done')
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('XADD', KEYS[3], '*', unpack(ARGV, 4))
return 1
"""


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    url: str
    name: str
    max_batch: int = 4
    prefix: str = "pokemon"
    job_timeout: float = 300.0
    reclaim_idle: float = 5.0  # seconds before an entry of a silent worker is taken over
    max_attempts: int = 3  # started this often without finishing: a poison job, set aside
    heartbeat: float = 1.0  # seconds between heartbeats; the registry entry lives 5 of them
    stop_grace: float = 30.0  # on SIGTERM, how long the running batch may take to finish
    heartbeat_file: Path | None = None  # touched while healthy (the image's healthcheck reads it)
    max_backoff: float = 15.0
    previews: PreviewPacing | None = dataclasses.field(default_factory=PreviewPacing)  # None: none

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if self.reclaim_idle <= 0 or self.heartbeat <= 0:
            raise ValueError("reclaim_idle and heartbeat must be positive")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")


@dataclass(eq=False, slots=True)
class _Held:
    entry_id: bytes
    user_id: int


class RemoteWorker:
    """One worker process's loop around a `GenerationWorker` thread."""

    def __init__(
        self, engine: EngineProtocol, config: WorkerConfig, upscaler: RunnerProtocol | None = None
    ) -> None:
        self.engine = engine
        self.config = config
        self._keys = Keys(config.prefix)
        self._prefetch = 2 * config.max_batch
        self._thread = GenerationWorker(
            engine,
            upscaler=upscaler,  # ⬆️ jobs; without one they fail `upscaler_off`
            queue_size=self._prefetch,
            max_batch=config.max_batch,
            job_timeout=config.job_timeout,
            heartbeat_file=config.heartbeat_file,
            previews=config.previews,
        )
        self._client: Any = None
        self._complete: Any = None
        self._held: dict[int, _Held] = {}
        # Cancels heard for jobs not held yet: one may arrive while its entry is being taken
        # in (after the `P:cancel:ID` check, before it is held), and must not be lost.
        self._early_cancels: OrderedDict[int, None] = OrderedDict()
        self._out: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._room = asyncio.Event()
        self._stop = asyncio.Event()
        self._redis = Reachability(
            config.url, impact="this worker takes no job and writes no result until it is back"
        )
        self._fatal: BaseException | None = None
        self._jobs_done = 0
        self._started_at = time.time()
        self._last_step = time.monotonic()  # the engine's last sign of life

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        """Serve until `request_stop()` (exit 0) or a fatal device error (exit 1)."""
        config = self.config
        self._client = connect(config.url)
        self._complete = self._client.register_script(_COMPLETE)
        self._thread.on_fatal = self._on_fatal
        self._thread.start(asyncio.get_running_loop())
        log.info(
            "worker %s: device=%s model=%s max_batch=%s redis=%s",
            config.name,
            getattr(self.engine, "device", "?"),
            getattr(self.engine, "model", "?"),
            config.max_batch,
            self._redis.where,
        )
        loops = Tasks(f"worker {config.name}")
        loops.spawn(self._guard(self._intake_loop), name="worker-intake")
        loops.spawn(self._guard(self._keeper_loop), name="worker-keeper")
        loops.spawn(self._guard(self._cancel_loop), name="worker-cancels")
        writer = Tasks(f"worker {config.name} writer")
        writer.spawn(self._writer_loop(), name="worker-writer")
        await self._stop.wait()
        await loops.close()
        left = await self._thread.stop(timeout=config.stop_grace)
        if left:
            log.info("worker %s: %s jobs left for another worker: %s", config.name, len(left), left)
        await self._drain_writes()
        await writer.close()
        with contextlib.suppress(*redis_errors()):
            await self._client.delete(self._keys.worker(config.name))
            await self._client.srem(self._keys.workers, config.name)
        with contextlib.suppress(*redis_errors()):
            await self._client.aclose()
        return EXIT_FATAL if self._fatal is not None else EXIT_OK

    # ---- loops -----------------------------------------------------------------------------------

    async def _guard(self, loop: Callable[[], Awaitable[None]]) -> None:
        """Run one loop until the worker stops: Redis errors back off and retry (`keep_trying`),
        nothing else kills it."""
        await keep_trying(
            loop,
            running=lambda: not self._stop.is_set(),
            unreachable=self._redis.failed,
            cap=self.config.max_backoff,
        )

    async def _intake_loop(self) -> None:
        client, keys, config = self._client, self._keys, self.config
        await ensure_group(client, keys.jobs, WORKERS_GROUP)
        last_reclaim = 0.0
        while not self._stop.is_set():
            room = self._prefetch - len(self._held)
            if room <= 0:
                self._room.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await self._room.wait()
                continue
            if time.monotonic() - last_reclaim >= config.reclaim_idle / 2:
                last_reclaim = time.monotonic()
                claimed = await client.xautoclaim(
                    keys.jobs,
                    WORKERS_GROUP,
                    config.name,
                    min_idle_time=int(config.reclaim_idle * 1000),
                    start_id="0-0",
                    count=room,
                )
                entries: list[Entry] = [(e[0], e[1] or {}) for e in claimed[1] if e[0] is not None]
                if entries:
                    if claimed[0] not in {b"0-0", "0-0"}:
                        last_reclaim = 0.0  # more to take over: look again at once
                    log.info("worker %s: took over %s idle entries", config.name, len(entries))
                    await self._accept(entries, reclaimed=True)
                    continue
            reply = await client.xreadgroup(
                WORKERS_GROUP, config.name, {keys.jobs: ">"}, count=room, block=500
            )
            for entries in by_stream(reply).values():
                await self._accept(entries, reclaimed=False)

    async def _keeper_loop(self) -> None:
        """Heartbeat, keep held entries fresh, and catch cancels the stream may have missed."""
        client, keys, config = self._client, self._keys, self.config
        interval = min(config.heartbeat, config.reclaim_idle / 3)
        while not self._stop.is_set():
            info = WorkerInfo(
                name=config.name,
                device=str(getattr(self.engine, "device", "?")),
                model=str(getattr(self.engine, "model", "?")),
                max_batch=config.max_batch,
                jobs_done=self._jobs_done,
                running=self._thread.running,
                started_at=self._started_at,
                seen_at=time.time(),
            )
            held = dict(self._held)
            async with client.pipeline(transaction=False) as pipe:
                pipe.hset(keys.worker(config.name), mapping=info.to_fields())
                pipe.expire(keys.worker(config.name), max(1, round(5 * config.heartbeat)))
                pipe.sadd(keys.workers, config.name)
                for job_id in held:
                    pipe.exists(keys.cancel(job_id))
                if held:
                    pipe.xclaim(
                        keys.jobs,
                        WORKERS_GROUP,
                        config.name,
                        0,
                        [h.entry_id for h in held.values()],
                        justid=True,
                    )
                replies = await pipe.execute()
            self._redis.reached()
            for job_id, cancelled in zip(held, replies[3 : 3 + len(held)], strict=True):
                if cancelled:
                    self._thread.cancel(job_id)
            if not self._thread.running:
                self._last_step = time.monotonic()
            stuck = time.monotonic() - self._last_step
            if stuck > config.job_timeout + HUNG_GRACE_SECONDS:
                # The device call hangs (no step for longer than any job may run): stop keeping
                # the entries fresh and exit non-zero, so other workers take them over.
                self._on_fatal(RuntimeError(f"the engine made no step for {stuck:.0f} s"))
                return
            metrics.QUEUE_LENGTH.set(self._thread.queued)
            metrics.RUNNING.set(self._thread.running)
            await asyncio.sleep(interval)

    async def _cancel_loop(self) -> None:
        client, keys = self._client, self._keys
        last: bytes | str = "$"
        while not self._stop.is_set():
            reply = await client.xread({keys.cancels: last}, block=1000)
            for entries in by_stream(reply).values():
                for entry_id, fields in entries:
                    last = entry_id
                    try:
                        job_id = int(field(fields, "job"))
                    except ValueError:
                        continue
                    if job_id not in self._held:
                        self._early_cancels[job_id] = None
                        while len(self._early_cancels) > EARLY_CANCELS:
                            self._early_cancels.popitem(last=False)
                    elif self._thread.cancel(job_id):
                        log.info("job=%s: cancel received", job_id)

    async def _writer_loop(self) -> None:
        """Write events and results in order; a result is retried until Redis takes it, whatever
        the error (unreachable, out of memory, READONLY after a failover): were this loop to
        end, no result would be written while the heartbeat keeps the jobs on this worker."""
        import redis.exceptions

        backoff = Backoff(cap=self.config.max_backoff)
        while True:
            action = await self._out.get()
            while True:
                try:
                    await self._write(action)
                    backoff.reset()
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if action[0] == "progress":
                        break  # a newer step follows
                    if isinstance(exc, redis_errors()):
                        self._redis.failed(exc)
                    else:  # refused (out of memory, READONLY) or a bug: each one is news
                        log.warning(
                            "writing %s failed: %s; retrying",
                            action[0],
                            one_line(exc),
                            exc_info=not isinstance(exc, redis.exceptions.RedisError),
                        )
                    await backoff.wait()
            self._out.task_done()

    async def _drain_writes(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.stop_grace):
                await self._out.join()

    # ---- jobs ------------------------------------------------------------------------------------

    async def _accept(self, entries: list[Entry], *, reclaimed: bool) -> None:
        client, keys, config = self._client, self._keys, self.config
        fresh: list[tuple[bytes, Mapping[bytes, bytes]]] = []
        for entry_id, fields in entries:
            if not fields:  # deleted from the stream while pending: nothing to run
                await client.xack(keys.jobs, WORKERS_GROUP, entry_id)
                continue
            fresh.append((entry_id, fields))
        if not fresh:
            return
        deliveries: list[int] = [1] * len(fresh)
        async with client.pipeline(transaction=False) as pipe:
            for entry_id, fields in fresh:
                job_id = field(fields, "job")
                pipe.exists(keys.cancel(int(job_id or 0)))
                pipe.hmget(keys.job(int(job_id or 0)), ["state", "attempts"])
                if reclaimed:
                    pipe.xpending_range(keys.jobs, WORKERS_GROUP, entry_id, entry_id, 1)
            replies = await pipe.execute()
        per = 3 if reclaimed else 2
        for i, (entry_id, fields) in enumerate(fresh):
            cancelled, (state, attempts) = replies[i * per], replies[i * per + 1]
            state, attempts = text(state), int(text(attempts) or 0)
            if reclaimed and replies[i * per + 2]:
                deliveries[i] = int(replies[i * per + 2][0]["times_delivered"])
            try:
                job_id = int(field(fields, "job"))
                user_id = int(field(fields, "user") or 0)
            except ValueError:
                log.error("dropping a job entry without a job id: %r", entry_id)
                await client.xack(keys.jobs, WORKERS_GROUP, entry_id)
                continue
            if job_id in self._held:
                continue
            if state in {"done", "delivered"}:  # another worker finished it already
                await client.xack(keys.jobs, WORKERS_GROUP, entry_id)
                await client.xdel(keys.jobs, entry_id)
                continue
            self._held[job_id] = _Held(entry_id, user_id)
            if (
                attempts >= config.max_attempts
                or deliveries[i] > DELIVERY_FACTOR * config.max_attempts
            ):
                error = PoisonJobError(
                    f"this job was started {attempts} times and never finished (it crashed "
                    "or hung the worker each time); it was set aside"
                )
                log.error(
                    "job=%s: poison (%s attempts, %s deliveries); moved to %s",
                    job_id,
                    attempts,
                    deliveries[i],
                    keys.dead,
                )
                dead = dead_letter(
                    fields,
                    reason=error.code,
                    attempts=attempts,
                    deliveries=deliveries[i],
                    worker=config.name,
                )
                await client.xadd(keys.dead, dead, maxlen=DEAD_MAXLEN)
                self._out.put_nowait(("complete", job_id, encode_error(error), "poison"))
                continue
            if job_id in self._early_cancels:  # heard while this entry was being taken in
                del self._early_cancels[job_id]
                cancelled = True
            if cancelled:
                self._out.put_nowait(("complete", job_id, {"type": "cancelled"}, "cancelled"))
                continue
            try:
                request = decode_request(field(fields, "request"))
            except (GenerationError, ValueError, TypeError) as exc:
                error = (
                    exc
                    if isinstance(exc, GenerationError)
                    else GenerationError(f"a malformed request: {one_line(exc)}")
                )
                self._out.put_nowait(("complete", job_id, encode_error(error), error.code))
                continue
            try:
                inner = self._thread.submit(
                    job_id,
                    user_id,
                    request,
                    on_progress=self._on_progress,
                    on_start=lambda job_id=job_id, steps=request.steps: self._on_start(
                        job_id, steps
                    ),
                    # Started before and never finished: it may be the one that crashed its
                    # batch, so it runs alone and only the real culprit reaches `max_attempts`.
                    alone=attempts >= 1,
                )
            except UpscalerOffError as exc:  # an upscale, and this worker loaded no upscaler
                self._out.put_nowait(("complete", job_id, encode_error(exc), exc.code))
                continue
            inner.future.add_done_callback(lambda fut, job_id=job_id: self._on_done(job_id, fut))

    def _on_start(self, job_id: int, steps: int) -> None:
        self._last_step = time.monotonic()
        self._out.put_nowait(("started", job_id, steps))

    def _on_progress(self, progress: Progress) -> None:
        self._last_step = time.monotonic()
        self._out.put_nowait(("progress", progress))

    def _on_done(self, job_id: int, future: asyncio.Future[GenerationResult]) -> None:
        outcome = outcome_of(future)
        if isinstance(outcome, Done):
            result = outcome.result
            metrics.record_outcome("done", run=result.run_seconds, images=len(result.images))
            self._out.put_nowait(("complete", job_id, encode_result(result), "done"))
        elif isinstance(outcome, Cancelled):
            self._out.put_nowait(("complete", job_id, {"type": "cancelled"}, "cancelled"))
        elif isinstance(outcome.error, WorkerStoppedError):
            # Not run (or cut short) because this worker stops: leave the entry pending, so
            # another worker takes it over once it is idle.
            self._held.pop(job_id, None)
            self._room.set()
        else:
            error = outcome.error
            self._out.put_nowait(("complete", job_id, encode_error(error), error.code))

    async def _write(self, action: tuple[Any, ...]) -> None:
        client, keys = self._client, self._keys
        kind = action[0]
        if kind == "progress":
            progress: Progress = action[1]
            await client.xadd(keys.events, encode_progress(progress), maxlen=EVENTS_MAXLEN)
        elif kind == "started":
            _, job_id, steps = action
            async with client.pipeline(transaction=True) as pipe:
                pipe.hset(keys.job(job_id), "state", "running")
                pipe.hincrby(keys.job(job_id), "attempts", 1)
                pipe.xadd(
                    keys.events,
                    {"type": "started", "job": str(job_id), "step": "0", "total": str(steps)},
                    maxlen=EVENTS_MAXLEN,
                )
                await pipe.execute()
        else:
            _, job_id, fields, outcome = action
            held = self._held.get(job_id)
            if held is None:
                return
            args: list[Any] = [WORKERS_GROUP, held.entry_id, JOB_TTL_SECONDS]
            # `user`: whose job this was, so a bot whose database reused the id (a restored
            # backup) can tell this result from its own job's.
            owner = {"job": str(job_id), "user": str(held.user_id), "worker": self.config.name}
            for name, value in {**fields, **owner}.items():
                args.extend((name, value))
            written = await self._complete(
                keys=[keys.job(job_id), keys.jobs, keys.results], args=args
            )
            self._held.pop(job_id, None)
            self._room.set()
            self._jobs_done += 1
            if outcome != "done":
                metrics.record_outcome(outcome)
            log.info(
                "job=%s: %s%s", job_id, outcome, "" if written else " (a duplicate; not reported)"
            )

    def _on_fatal(self, error: BaseException) -> None:
        log.critical("worker %s: the device failed: %s", self.config.name, error)
        self._fatal = error
        self._stop.set()
