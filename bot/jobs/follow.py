"""Following a job the generator holds: its events go to the live view (`JobView`), its
outcome is settled here: a picture handed to delivery with the result card the presenter
makes into an embed, a failure or cancel recorded and told, a shutdown's job left on disk for
the next start."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord

from bot.jobs.presenter import ResultCard
from bot.jobs.results import translation_shown, untranslated, without_job
from bot.messaging import RESULT_FILENAME
from bot.moderation import blocked_word
from generation import metrics
from generation.errors import WorkerStoppedError
from generation.generator import Cancelled, Done, Failed, Queued, Started
from generation.pnginfo import sampler_name
from generation.types import Progress
from storage import JSON, StorageError

if TYPE_CHECKING:
    from bot.jobs.delivery import Delivery
    from bot.jobs.state import ActiveJob, JobContext
    from bot.jobs.view import JobView
    from generation.errors import GenerationError
    from generation.types import GenerationResult
    from storage import JobRecord, Quota

log = logging.getLogger(__name__)

Outcome = Done | Failed | Cancelled | None


class Follower:
    def __init__(self, ctx: JobContext, view: JobView, delivery: Delivery) -> None:
        self.ctx = ctx
        self.view = view
        self.delivery = delivery

    async def follow(self, active: ActiveJob) -> None:
        assert active.handle is not None
        try:
            if active.resumed:
                await self.ctx.connected.wait()  # then shown paced, like every cosmetic edit
            outcome: Outcome = None
            async for event in active.handle.events():
                if isinstance(event, Queued):
                    await self.view.queued(active, event)
                elif isinstance(event, Started):
                    active.running = self.ctx.tasks.spawn(self._mark_running(active))
                elif isinstance(event, Progress):
                    self.view.progress(active, event)
                else:
                    outcome = event
            if active.running is not None:
                await asyncio.shield(active.running)  # the row is `running` before it ends
            await self._conclude(active, outcome)
        except Exception as exc:
            await self._undelivered(active, exc)
        finally:
            active.finished = True
            self.ctx.active.pop(active.job_id, None)

    async def _conclude(self, active: ActiveJob, outcome: Outcome) -> None:
        if isinstance(outcome, Done):
            if await self._blocked_once_translated(active, outcome.result):
                return
            await self._deliver(active, outcome.result)
            return
        if isinstance(outcome, Failed) and isinstance(outcome.error, WorkerStoppedError):
            # The generator stopped before (or while) running it: a shutdown, or a fatal device
            # error that is about to restart the process. The row stays queued/running on disk
            # and the next start resumes it in the message shown here.
            log.info("job=%s left for resumption (%s)", active.job_id, outcome.error.code)
            return
        if (
            isinstance(outcome, Cancelled)
            and active.cancelled_by is None  # not a ✖: the shutdown's
            and (self.ctx.stopping or not self.ctx.accepting)
        ):
            log.info("job=%s left for resumption (cancelled by the shutdown)", active.job_id)
            return
        error = outcome.error if isinstance(outcome, Failed) else None
        await self._fail(active, error)

    async def _mark_running(self, active: ActiveJob) -> None:
        # Bookkeeping only: a row left `queued` still becomes `done` (or resumes) later, so a
        # database that refuses writes right now must not stop the picture being delivered.
        try:
            await self.ctx.store.jobs.mark_running(active.job_id)
        except StorageError as exc:
            log.warning("job=%s: running state not recorded: %s", active.job_id, exc)

    async def _blocked_once_translated(self, active: ActiveJob, result: GenerationResult) -> bool:
        """The server's blocklist, checked again on the Japanese an English prompt became:
        admission saw only what the user typed. A picture drawn from a blocked word is never
        posted; the job ends refused (not counted), and the word is not repeated."""
        first = result.first
        request = active.request
        used = (first.prompt_used, first.negative_used)
        if active.guild_id is None or used == (request.prompt, request.negative_prompt):
            return False
        words = await self.ctx.store.blocklist.words(active.guild_id)
        if blocked_word(used, words) is None:
            return False
        await self.ctx.store.jobs.mark_failed(active.job_id, "prompt_blocked", fault="rejected")
        log.info("job=%s: its translation holds a blocked word; not posted", active.job_id)
        text = self.ctx.presenter.ended_text(active.locale, "prompt_blocked")
        await self.delivery.say_ended(active, text)
        return True

    async def _still_wanted(self, active: ActiveJob) -> JobRecord | None:
        """The job's row, or None after dropping its message: it was cancelled or deleted from
        outside this process (`pokemon-bot forget-user`), so the picture is never posted."""
        row = await self.ctx.store.jobs.get(active.job_id)
        if row is None or row.state == "cancelled":
            log.info("job=%s was cancelled or deleted meanwhile; not posting it", active.job_id)
            await self.delivery.drop(active)
            return None
        return row

    async def _quota(self, active: ActiveJob) -> Quota | None:
        """The requester's quota for the picture's message (None in DMs, or when unreadable:
        the picture matters more than the quota line)."""
        if active.guild_id is None:
            return None
        try:
            return await self.ctx.store.limits.quota(active.guild_id, active.user_id)
        except StorageError as exc:
            log.warning("job=%s: quota not shown: %s", active.job_id, exc)
            return None

    async def _deliver(self, active: ActiveJob, result: GenerationResult) -> None:
        row = await self._still_wanted(active)
        if row is None:
            return
        quota = await self._quota(active)
        request, first = active.request, result.first
        # English asked to be translated reached the model as typed (the translation model
        # is not available): delivered with a note, and not counted.
        refund = untranslated(request, first.prompt_used, first.negative_used)
        if refund and quota is not None:
            quota = without_job(quota, request.count)
        seeds = [image.seed for image in result.images]
        # Several pictures: one attachment each, named by its seed, shown as a gallery.
        files = (
            [(RESULT_FILENAME, first.png)]
            if len(result.images) == 1
            else [(f"pokemon-{image.seed}.png", image.png) for image in result.images]
        )
        card = ResultCard(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            seeds=seeds,
            steps=first.steps,
            seconds=result.run_seconds,
            user_id=active.user_id,
            quota=quota,
            truncated=any(image.truncated for image in result.images),
            parent_job_id=active.parent_job_id,
            # The text the model was given, when translation changed it (or could not).
            used=translation_shown(request, first.prompt_used, first.negative_used),
            untranslated=refund,
            strength=request.strength if request.is_img2img else None,
            withheld=request.count - len(result.images),
            guidance=request.guidance,
            sampler=sampler_name(request.scheduler),
            size=(first.width, first.height),
            model=result.model or self.ctx.settings.pokemon_model,  # the model that drew it
            notes=active.notes,
        )
        # Both texts are stored: the request keeps the user's, the outcome what was drawn,
        # so 🔁 and 🎨 reuse the translation (see `bot.jobs.rows.request_as_drawn`).
        outcome: dict[str, JSON] = {
            "seeds": list[JSON](seeds),
            "prompt_used": first.prompt_used,
            "negative_used": first.negative_used,
            "model": result.model or self.ctx.settings.pokemon_model,
        }
        embed = self.ctx.presenter.result_embed(active.locale, card)
        await self.delivery.deliver(
            active, embed=embed, files=files, outcome=outcome, refund=refund
        )
        metrics.record_delivery((discord.utils.utcnow() - row.created_at).total_seconds())

    async def _undelivered(self, active: ActiveJob, exc: Exception) -> None:
        """The picture could not be posted (no permission, Discord down, bot removed) or its
        outcome not recorded: settle the row, and tell the user if any route still works.
        Nothing is deleted here: the original response may hold the picture."""
        if isinstance(exc, discord.Forbidden | discord.NotFound):
            log.warning("job=%s: could not deliver: %s", active.job_id, exc)
        else:
            log.error("job=%s: delivery failed", active.job_id, exc_info=exc)
        jobs = self.ctx.store.jobs
        try:
            if active.delivered:
                # On Discord already: never fail it (a restart would not resume it either).
                await self.delivery.record(active.job_id, lambda: jobs.mark_done(active.job_id))
            else:
                await jobs.mark_failed(active.job_id, "delivery_failed", fault="ours")
        except Exception:
            log.exception("job=%s: could not record the outcome", active.job_id)
        if active.delivered:
            return
        text = self.ctx.presenter.ended_text(active.locale, "delivery_failed")
        await self.delivery.tell_failure(active, text)

    async def _fail(self, active: ActiveJob, error: GenerationError | None) -> None:
        jobs = self.ctx.store.jobs
        if error is None and active.cancelled_by is not None:
            # A ✖ stopped this job: record who, and say it in the job's own message (mentions
            # in it never ping: every message goes out with no allowed mentions).
            await jobs.mark_cancelled(active.job_id, by=active.cancelled_by)
            log.info("job=%s cancelled by user=%s", active.job_id, active.cancelled_by)
            text = self.ctx.presenter.cancelled_text(active.locale, active.cancelled_by)
            await self.delivery.say_cancelled(active, text)
            return
        if error is None:
            await jobs.mark_cancelled(active.job_id)
            code = "cancelled"
        else:
            await jobs.mark_failed(
                active.job_id, error.code, fault="ours" if error.ours else "user"
            )
            code = error.code
        log.info("job=%s ended (%s); telling user=%s", active.job_id, code, active.user_id)
        await self.delivery.say_ended(active, self.ctx.presenter.ended_text(active.locale, code))
