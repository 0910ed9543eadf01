"""Resume after a restart: the jobs the last process left queued or running continue in the
message their users already have. Once the gateway is connected each known message is read
back (a picture already there is recorded, not drawn again), then the job is offered to the
generator through intake's checks and submit; a job the generator cannot take yet waits on
disk and is offered again. Resume admits no new work."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import TYPE_CHECKING, Literal

import discord

from bot.errors import UserFacingError
from bot.jobs.rows import request_from_job
from bot.messaging import TRANSIENT_ERRORS, ChannelPacer
from bot.origins import ResumedOrigin
from generation.errors import GeneratorUnavailableError, WorkerStoppedError
from storage import StorageError

if TYPE_CHECKING:
    from bot.jobs.delivery import Delivery
    from bot.jobs.intake import Intake
    from bot.jobs.state import JobContext
    from storage import JobRecord

log = logging.getLogger(__name__)

# A resumed job the generator cannot take yet is offered again after 1 s, doubling to 30 s.
RESUME_RETRY_FIRST = 1.0
RESUME_RETRY_MAX = 30.0
RESUME_READS_AT_ONCE = 5  # resumed jobs' messages read back at the same time

# What became of a job from the last process offered to the generator again.
ResumeOutcome = Literal["queued", "waiting", "unavailable", "refused", "skipped", "stopped"]


class Resume:
    def __init__(
        self, ctx: JobContext, intake: Intake, delivery: Delivery, pacer: ChannelPacer
    ) -> None:
        self.ctx = ctx
        self.intake = intake
        self.delivery = delivery
        self.pacer = pacer  # the view's: notices share the per-channel pacing
        self.max_age = float("inf")
        self.retry_first = RESUME_RETRY_FIRST
        self.retry_max = RESUME_RETRY_MAX
        # Resumed jobs the generator could not take yet, oldest first, and the task that
        # offers them again until it can (`_offer_waiting`); ended by `ctx.ending`.
        self.waiting: list[JobRecord] = []
        self._offering: asyncio.Task[None] | None = None

    async def resume(self, *, max_age: float) -> tuple[int, int]:
        """Queue again the jobs the last process left queued or running; returns (resumed or
        being read back, refused now). Fast and silent: no Discord call is made here, so the
        gateway connects at once; messages are updated once it is connected, paced per channel.

        A job whose message is known (every slash job, and a 🔁 that showed its place) may
        already carry its picture, whatever its state says: the `running` write is
        bookkeeping only, and the process may have died before `done` was recorded. Those
        are read back once the gateway is up (`_read_back`), before anything is drawn
        again. Jobs with no message are queued at once. A job the generator cannot take yet
        (no worker online, Redis down) stays on disk and is offered again (`_offer_waiting`)."""
        self.max_age = max_age
        resumed = refused = 0
        to_read: list[JobRecord] = []
        for job in await self.ctx.store.jobs.pending():
            if job.progress_message_id is not None:
                to_read.append(job)
                resumed += 1
                continue
            outcome = await self.resubmit(job)
            if outcome == "stopped":
                break
            if outcome == "refused":
                refused += 1
            elif outcome != "skipped":
                resumed += 1
        if to_read:
            self.ctx.tasks.spawn(self._read_back(to_read), name="resume-read-back")
        if resumed or refused:
            log.info(
                "resuming %d jobs (%d read back first), refused %d (too old or no longer valid)",
                resumed,
                len(to_read),
                refused,
            )
        return resumed, refused

    def _expired(self, job: JobRecord) -> bool:
        created = job.created_at if job.created_at.tzinfo else job.created_at.replace(tzinfo=dt.UTC)
        return (discord.utils.utcnow() - created).total_seconds() > self.max_age

    async def _read_back(self, jobs: list[JobRecord]) -> None:
        """Jobs from the last process whose message is known, oldest first: once the gateway
        is up, read their messages (a few at a time), then, in order, record as done each one
        whose picture had landed, and queue the others again."""
        await self.ctx.connected.wait()
        if self.ctx.stopping or not self.ctx.accepting:
            return  # shutting down before the gateway came up: they stay on disk
        limit = asyncio.Semaphore(RESUME_READS_AT_ONCE)
        async with asyncio.TaskGroup() as group:
            reads = [group.create_task(self._message_of(job, limit)) for job in jobs]
            for n, (job, read) in enumerate(zip(jobs, reads, strict=True)):
                message = await read
                try:
                    if message is not None and message.attachments:
                        log.info("job=%s: its picture had landed before the restart", job.id)
                        await self.delivery.finish_delivered(job.id, message)
                        continue
                    if await self.resubmit(job) == "stopped":
                        for later in reads[n + 1 :]:
                            later.cancel()
                        return  # this job and the rest stay on disk for the next start
                except Exception:  # one job's trouble (a locked database) stops no other
                    log.exception("job=%s: could not resume it", job.id)

    async def _message_of(self, job: JobRecord, limit: asyncio.Semaphore) -> discord.Message | None:
        """A resumed job's message as Discord has it now (None: gone, or unreadable now)."""
        assert job.progress_message_id is not None
        channel = self.ctx.client.get_partial_messageable(
            job.channel_id or 0, guild_id=job.guild_id
        )
        async with limit:
            try:
                return await channel.fetch_message(job.progress_message_id)
            except discord.NotFound:
                return None
            except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
                log.info("job=%s: could not read its message before resuming: %s", job.id, exc)
                return None

    async def resubmit(self, job: JobRecord) -> ResumeOutcome:
        """Queue a job from the last process again, if it still may run; behind those already
        waiting for the generator, to keep their order."""
        if not self.waiting:
            outcome = await self.offer(job)
            if outcome != "unavailable":
                return outcome
        self._wait_for_generator(job)
        return "waiting"

    async def offer(self, job: JobRecord) -> ResumeOutcome:
        """Hand a job from the last process to the generator, as its row says now: a ✖ or
        /privacy may have cancelled it while its message was read back or while it waited.
        Too old, or no longer valid under today's settings: refused and its user told."""
        if not self.ctx.accepting:
            return "stopped"  # shutting down: it stays on disk for the next start
        row = await self.ctx.store.jobs.get(job.id)
        if row is None or row.state not in ("queued", "running"):
            log.info("job=%s was cancelled or deleted before it resumed; not drawn", job.id)
            return "skipped"
        if self._expired(row):
            await self._refuse(row, "expired", self.ctx.presenter.expired_text(row.locale))
            return "refused"
        try:
            # Words blocked since, and limits lowered since, are obeyed.
            request = await self.intake.check(request_from_job(row), row.guild_id)
            await self.intake.submit(row, request, ResumedOrigin(row))
        except UserFacingError as exc:
            if exc.code == WorkerStoppedError.code:
                log.info("generator stopped while resuming; job=%s and later ones left", job.id)
                return "stopped"
            if exc.code == GeneratorUnavailableError.code:
                return "unavailable"
            await self._refuse(row, exc.code, exc.localized(row.locale))
            return "refused"
        return "queued"

    def _wait_for_generator(self, job: JobRecord) -> None:
        log.info("job=%s: generation is unavailable; it stays queued and is offered again", job.id)
        self.waiting.append(job)
        if self._offering is None or self._offering.done():
            self._offering = self.ctx.tasks.spawn(self._offer_waiting(), name="resume-waiting")

    async def _offer_waiting(self) -> None:
        """Offer the resumed jobs the generator could not take (a bot and its workers started
        together: none has announced itself yet; Redis down) again, oldest first, waiting 1 s
        doubling to 30 s between rounds, until each is taken, refused (too old by now, no
        longer valid), cancelled, or the service stops (they stay on disk for the next start).
        Meanwhile their rows stay queued/running and their users are told nothing: a new
        command is still refused at once, but these were accepted already."""
        delay = self.retry_first
        while self.waiting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ctx.ending.wait(), delay)
            if self.ctx.ending.is_set():
                log.info("%d resumed jobs left on disk for the next start", len(self.waiting))
                self.waiting.clear()
                return
            delay = min(delay * 2, self.retry_max)
            while self.waiting:
                job = self.waiting[0]
                try:
                    outcome = await self.offer(job)
                except StorageError as exc:  # a locked or full database: try again later
                    log.warning("job=%s: could not resume it yet: %s", job.id, exc)
                    outcome = "unavailable"
                except Exception:
                    log.exception("job=%s: could not resume it", job.id)
                    outcome = "skipped"
                if outcome == "unavailable":
                    break
                self.waiting.pop(0)
                if outcome == "stopped":
                    self.waiting.clear()
                    return
                if outcome == "queued":
                    log.info("job=%s: taken by the generator after waiting", job.id)

    async def _refuse(self, job: JobRecord, code: str, text: str) -> None:
        """A job from the last process that will not run: record it (not counted), and say so
        in its message once the gateway is up."""
        await self.intake.settle(job.id, code, "ours" if code == "expired" else "rejected")
        self.ctx.tasks.spawn(self._tell(job, text), name=f"resume-notice-{job.id}")

    async def _tell(self, job: JobRecord, text: str) -> None:
        await self.ctx.connected.wait()
        await self.pacer.wait(job.channel_id or 0)
        await ResumedOrigin(job).refuse(self.ctx.client, text)
