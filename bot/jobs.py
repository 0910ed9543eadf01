"""The job runner: hand a stored job to the worker, show its queue place and progress, deliver
the image (or the reason there is none), and keep the job row in step.

A job's messages go through `send_safely()`, so a job that outlives its interaction token
moves to a channel reply by itself. Jobs found `queued`/`running` on disk at start-up are
resumed the same way, replying to the message they were last shown in.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import discord

from bot.i18n import catalog, t
from bot.messaging import (
    PROGRESS_INTERVAL,
    REGENERATE_EMOJI,
    SERVER_ERROR_RETRY_DELAYS,
    Destination,
    EditThrottle,
    channel_notice,
    progress_bar,
    relative,
    result_embed,
    send_ephemeral,
    send_safely,
)
from generation.errors import (
    GenerationError,
    JobCancelledError,
    QueueFullError,
    WorkerStoppedError,
)
from generation.types import GenerationRequest, GenerationResult, Progress
from storage import NewJob, StorageError

if TYPE_CHECKING:
    from bot.client import PokemonBot
    from generation.worker import JobHandle
    from storage import JobRecord

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class ActiveJob:
    """The loop-side state of one job the worker holds: where it shows, and its edit pacing."""

    job_id: int
    user_id: int
    guild_id: int | None
    locale: str
    request: GenerationRequest
    dest: Destination
    parent_job_id: int | None
    throttle: EditThrottle
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    handle: JobHandle | None = None
    latest: Progress | None = None
    edit_scheduled: bool = False
    finished: bool = False
    progress_message_id: int | None = None
    running: asyncio.Task[Any] | None = None  # mark_running, awaited before the final state
    delivered: bool = False  # the picture is on Discord (even if recording that failed)


def request_from_job(job: JobRecord) -> GenerationRequest:
    """Rebuild the worker's request from a stored job row (resume, 🔁)."""
    return GenerationRequest(
        prompt=job.prompt,
        negative_prompt=job.negative_prompt or "",
        seed=job.seed,
        steps=job.steps,
        guidance=job.guidance,
        height=job.height,
        width=job.width,
        scheduler=job.scheduler,
    )


def new_job(
    request: GenerationRequest,
    *,
    user_id: int,
    guild_id: int | None,
    channel_id: int | None,
    locale: str,
    interaction_expires_at: dt.datetime | None = None,
    parent_job_id: int | None = None,
    reply_to_message_id: int | None = None,
) -> NewJob:
    """The job row to admit for `request` (the inverse of `request_from_job`)."""
    return NewJob(
        user_id=user_id,
        guild_id=guild_id,
        channel_id=channel_id,
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        seed=request.seed,
        steps=request.steps,
        guidance=request.guidance,
        width=request.width,
        height=request.height,
        scheduler=request.scheduler,
        locale=locale,
        interaction_expires_at=interaction_expires_at,
        parent_job_id=parent_job_id,
        reply_to_message_id=reply_to_message_id,
    )


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


class JobRunner:
    """Owned by the bot; every coroutine runs on the event loop."""

    def __init__(self, bot: PokemonBot, *, progress_interval: float = PROGRESS_INTERVAL) -> None:
        self.bot = bot
        self.progress_interval = progress_interval
        self.accepting = True
        self.stopping = False
        self.active: dict[int, ActiveJob] = {}
        # Pauses between our retries of the final upload on a Discord 5xx (tests shorten them).
        self.retry_delays: tuple[float, ...] = SERVER_ERROR_RETRY_DELAYS
        self._tasks: set[asyncio.Task[Any]] = set()
        # Outcomes of delivered jobs the database refused, retried until it accepts them.
        self._unrecorded: dict[int, Callable[[], Awaitable[object]]] = {}
        self._recorders: set[asyncio.Task[None]] = set()
        self.record_retry_delay = 1.0

    # -- intake ---------------------------------------------------------------------------

    async def submit(
        self,
        job: JobRecord,
        request: GenerationRequest,
        dest: Destination,
        *,
        locale: str,
    ) -> JobHandle:
        """Queue a stored job on the worker and show its place in the queue.

        Raises `QueueFullError` / `WorkerStoppedError` at once; the caller settles the row.
        """
        if dest.interaction is not None and dest.handoff_text is None:
            dest.handoff_text = t("pokemon.handoff", locale)
        active = ActiveJob(
            job_id=job.id,
            user_id=job.user_id,
            guild_id=job.guild_id,
            locale=locale,
            request=request,
            dest=dest,
            parent_job_id=job.parent_job_id,
            throttle=EditThrottle(self.progress_interval),
        )
        handle = self.bot.worker.submit(
            job.id,
            job.user_id,
            request,
            on_progress=lambda p: self._on_progress(active, p),
            on_start=lambda: self._on_start(active),
        )
        active.handle = handle
        self.active[job.id] = active
        self._spawn(self._follow(active))
        await self._show_queued(active)
        return handle

    def stop_intake(self) -> None:
        """New commands and 🔁 are refused from now on; running work carries on."""
        self.accepting = False

    async def drain(self, within: float | None = None) -> None:
        """Wait for deliveries in flight (after the worker stopped) so none is cut off, then
        try once more to record outcomes the database refused (see `_record`)."""
        self.stopping = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=within)
        for task in list(self._recorders):
            task.cancel()
        for job_id, write in list(self._unrecorded.items()):
            try:
                await write()
                self._unrecorded.pop(job_id, None)
            except StorageError as exc:
                log.error("job=%s: outcome still not recorded at shutdown: %s", job_id, exc)

    async def _record(self, job_id: int, write: Callable[[], Awaitable[object]]) -> None:
        """Record a delivered job's outcome. If the database refuses (a full disk), keep
        trying in the background: a row left `running` would be drawn and posted again after
        a restart."""
        try:
            await write()
        except StorageError as exc:
            log.warning(
                "job=%s: outcome not recorded (%s); retrying in the background", job_id, exc
            )
            self._unrecorded[job_id] = write
            task = asyncio.get_running_loop().create_task(self._record_later(job_id, write))
            self._recorders.add(task)
            task.add_done_callback(self._recorders.discard)

    async def _record_later(self, job_id: int, write: Callable[[], Awaitable[object]]) -> None:
        delay = self.record_retry_delay
        while job_id in self._unrecorded:
            await asyncio.sleep(delay)
            try:
                await write()
            except StorageError:
                delay = min(delay * 2, 60.0)
                continue
            self._unrecorded.pop(job_id, None)
            log.info("job=%s: outcome recorded after a retry", job_id)

    # -- progress -------------------------------------------------------------------------

    async def _show_queued(self, active: ActiveJob) -> None:
        worker = self.bot.worker
        position = worker.position(active.job_id)
        eta = worker.eta_seconds(active.job_id)
        if position is None or position == 0:
            return  # already running (or done): progress edits take over
        if eta is not None:
            when = relative(discord.utils.utcnow() + dt.timedelta(seconds=eta))
            text = t("pokemon.queued", active.locale, position=position, eta=when)
        else:
            text = t("pokemon.queued_no_eta", active.locale, position=position)
        await self._show(active, text)

    def _on_start(self, active: ActiveJob) -> None:
        active.running = self._spawn(self._mark_running(active))
        if active.latest is None:
            active.latest = Progress(active.job_id, 0, active.request.steps, 0.0)
        self._request_progress_edit(active)

    def _on_progress(self, active: ActiveJob, progress: Progress) -> None:
        active.latest = progress
        self._request_progress_edit(active)

    def _request_progress_edit(self, active: ActiveJob) -> None:
        """Coalesce steps: edit now if the throttle allows, else once when it next allows."""
        if active.finished or active.edit_scheduled:
            return
        active.edit_scheduled = True
        if active.throttle.ready():
            self._spawn(self._edit_progress(active))
        else:
            asyncio.get_running_loop().call_later(
                active.throttle.wait_time(), lambda: self._spawn(self._edit_progress(active))
            )

    async def _edit_progress(self, active: ActiveJob) -> None:
        async with active.lock:
            active.edit_scheduled = False
            progress = active.latest
            if active.finished or progress is None:
                return
            if not active.throttle.ready():  # a queued-position edit slipped in meanwhile
                self._request_progress_edit(active)
                return
            text = t(
                "pokemon.progress",
                active.locale,
                bar=progress_bar(progress.step, progress.total),
                step=progress.step,
                total=progress.total,
            )
            await self._show_locked(active, text)

    async def _show(self, active: ActiveJob, text: str) -> None:
        async with active.lock:
            if not active.finished:
                await self._show_locked(active, text)

    async def _show_locked(self, active: ActiveJob, text: str) -> None:
        try:
            message = await send_safely(self.bot, active.dest, content=text)
        except (discord.HTTPException, OSError, aiohttp.ClientError) as exc:
            # Cosmetic: the job is on the worker already and must not fail with its message
            # (discord.py raises connection errors as they are, not as HTTPException).
            log.warning("job=%s: progress message failed: %s", active.job_id, exc)
            return
        finally:
            active.throttle.mark()
        if active.dest.reply_to is None:
            active.dest.reply_to = message.id  # fallback replies point at what the user saw
        if message.id != active.progress_message_id:
            active.progress_message_id = message.id
            try:
                await self.bot.store.jobs.set_message(active.job_id, progress_message_id=message.id)
            except StorageError as exc:  # bookkeeping only: the picture still goes out
                log.warning("job=%s: progress message id not recorded: %s", active.job_id, exc)

    async def _mark_running(self, active: ActiveJob) -> None:
        # Bookkeeping only: a row left `queued` still becomes `done` (or resumes) later, so a
        # database that refuses writes right now must not stop the picture being delivered.
        try:
            await self.bot.store.jobs.mark_running(active.job_id)
        except StorageError as exc:
            log.warning("job=%s: running state not recorded: %s", active.job_id, exc)

    # -- outcome --------------------------------------------------------------------------

    async def _follow(self, active: ActiveJob) -> None:
        assert active.handle is not None
        try:
            try:
                result = await active.handle.future
                if active.running is not None:
                    await asyncio.shield(active.running)  # the row is `running` before `done`
            except WorkerStoppedError as exc:
                # The worker stopped before (or while) running it: a shutdown, or a fatal device
                # error that is about to restart the process. The row stays queued/running on
                # disk and the next start resumes it, replying to the message shown here.
                log.info("job=%s left for resumption (%s)", active.job_id, exc.code)
                return
            except JobCancelledError as exc:
                if self.stopping or not self.accepting:
                    # Shutting down: the row stays queued/running on disk and resumes next start.
                    log.info("job=%s left for resumption (%s)", active.job_id, exc.code)
                    return
                await self._fail(active, exc)
            except GenerationError as exc:
                await self._fail(active, exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("job=%s: the worker failed unexpectedly", active.job_id)
                wrapped = GenerationError(str(exc))
                await self._fail(active, wrapped)
            else:
                await self._deliver(active, result)
        except Exception as exc:
            await self._undelivered(active, exc)
        finally:
            active.finished = True
            self.active.pop(active.job_id, None)

    async def _deliver(self, active: ActiveJob, result: GenerationResult) -> None:
        store = self.bot.store
        quota = None
        if active.guild_id is not None:
            try:
                quota = await store.limits.quota(active.guild_id, active.user_id)
            except StorageError as exc:  # the picture matters more than the quota line
                log.warning("job=%s: quota not shown: %s", active.job_id, exc)
        embed = result_embed(
            active.locale,
            prompt=active.request.prompt,
            negative_prompt=active.request.negative_prompt,
            seed=result.seed,
            steps=result.steps,
            seconds=result.run_seconds,
            user_id=active.user_id,
            quota=quota,
            truncated=result.truncated,
            parent_job_id=active.parent_job_id,
        )
        async with active.lock:
            active.finished = True  # no progress edit may land after the image
            message = await send_safely(
                self.bot,
                active.dest,
                content=None,
                embed=embed,
                png=result.png,
                retry_delays=self.retry_delays,
            )
            active.delivered = True
        await self._record(
            active.job_id,
            lambda: store.jobs.mark_done(active.job_id, result_message_id=message.id),
        )
        try:
            await message.add_reaction(REGENERATE_EMOJI)
        except discord.HTTPException as exc:
            log.warning("job=%s: could not add %s: %s", active.job_id, REGENERATE_EMOJI, exc)
        # The worker logs the one summary line per job; this ties the job to its message.
        log.info(
            "job=%s delivered to message=%s via %s",
            active.job_id,
            message.id,
            "interaction" if isinstance(message, discord.InteractionMessage) else "channel",
        )

    async def _undelivered(self, active: ActiveJob, exc: Exception) -> None:
        """The picture could not be posted (no permission, Discord down, bot removed) or its
        outcome not recorded: settle the row, and tell the user if any route still works."""
        if isinstance(exc, discord.Forbidden | discord.NotFound):
            log.warning("job=%s: could not deliver: %s", active.job_id, exc)
        else:
            log.exception("job=%s: delivery failed", active.job_id)
        try:
            if active.delivered:
                # On Discord already: never fail it (a restart would not resume it either).
                await self._record(
                    active.job_id, lambda: self.bot.store.jobs.mark_done(active.job_id)
                )
            else:
                await self.bot.store.jobs.mark_failed(
                    active.job_id, "delivery_failed", fault="ours"
                )
        except Exception:
            log.exception("job=%s: could not record the outcome", active.job_id)
        if active.delivered:
            return
        text = t("error.gen.delivery_failed", active.locale)
        dest = active.dest
        try:
            if dest.message is None and dest.token_usable() and dest.interaction is not None:
                await send_ephemeral(dest.interaction, text)
                return
        except discord.HTTPException as notice_error:
            log.info("job=%s: ephemeral notice failed: %s", active.job_id, notice_error)
        await channel_notice(
            self.bot,
            dest.channel_id,
            active.user_id,
            text,
            guild_id=dest.guild_id,
            reply_to=dest.reply_to,
        )

    async def _fail(self, active: ActiveJob, exc: GenerationError) -> None:
        store = self.bot.store
        if active.running is not None:
            await asyncio.shield(active.running)
        if isinstance(exc, JobCancelledError):
            await store.jobs.mark_cancelled(active.job_id)
        else:
            await store.jobs.mark_failed(
                active.job_id, exc.code, fault="ours" if exc.ours else "user"
            )
        log.info("job=%s failed (%s); telling user=%s", active.job_id, exc.code, active.user_id)
        key = f"error.gen.{exc.code}"
        text = t(key if key in catalog("en") else "error.gen.generation_failed", active.locale)
        async with active.lock:
            active.finished = True
            dest = active.dest
            if dest.message is None and dest.token_usable() and dest.interaction is not None:
                await send_ephemeral(dest.interaction, text)
                return
            if dest.message is not None:
                with contextlib.suppress(discord.HTTPException):
                    await dest.message.delete()
        await channel_notice(
            self.bot,
            dest.channel_id,
            active.user_id,
            text,
            guild_id=dest.guild_id,
            reply_to=dest.reply_to,
        )

    # -- resume ---------------------------------------------------------------------------

    async def resume_pending(self, *, max_age: float) -> tuple[int, int]:
        """Queue again the jobs left queued/running by the last process; fail (fault ours) those
        older than `max_age` seconds. Returns (resumed, expired)."""
        now = discord.utils.utcnow()
        resumed = expired = 0
        for job in await self.bot.store.jobs.pending():
            reply_to = job.progress_message_id or job.reply_to_message_id
            age = (now - _aware(job.created_at)).total_seconds()
            if age > max_age:
                await self._fail_resumed(job, "expired", "pokemon.resume_expired", reply_to)
                expired += 1
                continue
            # As in the /pokemon cog: a job without a channel (never from a slash command) gets
            # 0, which Discord answers with an error that the senders already log and survive.
            dest = Destination(
                channel_id=job.channel_id or 0, guild_id=job.guild_id, reply_to=reply_to
            )
            try:
                await self.submit(job, request_from_job(job), dest, locale=job.locale)
            except WorkerStoppedError:
                # A shutdown began while we were starting: this job and the rest stay on disk
                # for the next start, as the jobs a shutdown leaves queued do.
                log.info("worker stopped while resuming; job=%s and later ones left", job.id)
                break
            except QueueFullError as exc:
                await self._fail_resumed(job, exc.code, "pokemon.resume_failed", reply_to)
                expired += 1
                continue
            resumed += 1
        if resumed or expired:
            log.info("resumed %d jobs, failed %d too old or not queueable", resumed, expired)
        return resumed, expired

    async def _fail_resumed(
        self, job: JobRecord, code: str, message_key: str, reply_to: int | None
    ) -> None:
        """A job from the last process that will not run: record it (our fault), tell the user."""
        await self.bot.store.jobs.mark_failed(job.id, code, fault="ours")
        await channel_notice(
            self.bot,
            job.channel_id or 0,
            job.user_id,
            t(message_key, job.locale),
            guild_id=job.guild_id,
            reply_to=reply_to,
        )

    # -- plumbing -------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("job runner task failed", exc_info=task.exception())
