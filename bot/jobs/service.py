"""The job service: the one way in to the job layer, and a thin one.

`start()` (`/pokemon`), `regenerate()` and `vary()` (🔁 and 🎨, reaction or button), `upscale()`
(⬆️),
`cancel()` (✖), `forget_user()` (/privacy), `queue_places()` (/queue), `resume()` (start-up),
`stop_intake()` and `drain()` (shutdown). Each is handed to the part that owns it:

- `Intake`: validate against today's settings, blocklist, admit, record, submit;
- `Follower`: a job the generator holds, its events and its outcome;
- `JobView`: queue place and progress in the job's message, paced;
- `Delivery`: where the message lives, the picture, read-back, recording with retries;
- `Resume`: jobs the last process left; `RowWatcher`: rows changed by other processes;
- `Upscales`: ⬆️, through an intake of its own whose follower delivers an upscaled picture.

Its dependencies are explicit: the store, the generator (any `generation.generator.Generator`),
the settings, the Discord client it shows messages through, and the presenter that makes every
text, embed and button (`bot.jobs.presenter.Presenter`). Nothing outside the job layer writes
a job's state: cogs and buttons only translate Discord events into calls here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from bot.jobs.delivery import Delivery
from bot.jobs.follow import Follower
from bot.jobs.intake import Intake, SourceReader
from bot.jobs.resume import Resume
from bot.jobs.rows import request_as_drawn, source_picture_of
from bot.jobs.state import JobContext
from bot.jobs.upscales import UpscaleFollower, Upscales
from bot.jobs.view import JobView
from bot.jobs.watcher import RowWatcher
from bot.messaging import PROGRESS_INTERVAL
from bot.validation import random_seed

if TYPE_CHECKING:
    import discord

    from bot.command_permissions import CommandPermissions
    from bot.jobs.presenter import Presenter
    from bot.jobs.state import ActiveJob
    from bot.origins import ButtonOrigin, CommandOrigin, VariationOrigin
    from bot.settings import Settings
    from generation.generator import Generator
    from generation.types import GenerationRequest
    from storage import JobRecord, Storage

log = logging.getLogger(__name__)

CANCEL_WAIT_SECONDS = 30.0  # how long forgetting a user waits for their running job to stop


@dataclass(frozen=True, slots=True)
class QueuePlace:
    """One of a user's unfinished jobs as `/queue` shows it."""

    job_id: int
    position: int | None  # batches before it (1 = next); 0 running; None not known yet
    eta_seconds: float | None


@dataclass(frozen=True, slots=True)
class QueuePlaces:
    """`JobService.queue_places`: a user's jobs, and the whole queue's size."""

    jobs: list[QueuePlace]
    queued: int  # every job waiting, everyone's
    running: int  # every job drawing now


class JobService:
    """The job layer's one way in. All methods run on the event loop."""

    def __init__(
        self,
        *,
        store: Storage,
        generator: Generator,
        settings: Settings,
        client: discord.Client,
        presenter: Presenter,
        progress_interval: float = PROGRESS_INTERVAL,
    ) -> None:
        self.ctx = ctx = JobContext(
            store=store,
            generator=generator,
            settings=settings,
            client=client,
            presenter=presenter,
            progress_interval=progress_interval,
        )
        self.delivery = Delivery(ctx)
        self.view = JobView(ctx, self.delivery)
        self.follower = Follower(ctx, self.view, self.delivery)
        self.watcher = RowWatcher(ctx)
        self.intake = Intake(
            ctx, follow=self.follower.follow, on_submitted=self.watcher.ensure_running
        )
        self.resumer = Resume(ctx, self.intake, self.delivery, self.view.pacer)
        upscaled = UpscaleFollower(ctx, self.view, self.delivery)
        self.upscales = Upscales(
            Intake(ctx, follow=upscaled.follow, on_submitted=self.watcher.ensure_running)
        )

    # ---- what callers and tests read or tune ------------------------------------------------

    @property
    def active(self) -> dict[int, ActiveJob]:
        """The jobs the generator holds for this process, by id."""
        return self.ctx.active

    @property
    def accepting(self) -> bool:
        return self.ctx.accepting

    @property
    def connected(self) -> asyncio.Event:
        """Set once the gateway is connected: resumed jobs wait for it to show anything."""
        return self.ctx.connected

    @property
    def command_permissions(self) -> CommandPermissions | None:
        return self.intake.command_permissions

    @command_permissions.setter
    def command_permissions(self, value: CommandPermissions | None) -> None:
        self.intake.command_permissions = value
        self.upscales.intake.command_permissions = value

    @property
    def progress_interval(self) -> float:
        return self.ctx.progress_interval

    @progress_interval.setter
    def progress_interval(self, value: float) -> None:
        self.ctx.progress_interval = value  # for jobs started from now on

    @property
    def retry_delays(self) -> tuple[float, ...]:
        return self.delivery.retry_delays

    @retry_delays.setter
    def retry_delays(self, value: tuple[float, ...]) -> None:
        self.delivery.retry_delays = value

    @property
    def record_retry_delay(self) -> float:
        return self.delivery.record_retry_delay

    @record_retry_delay.setter
    def record_retry_delay(self, value: float) -> None:
        self.delivery.record_retry_delay = value

    # ---- the ways in --------------------------------------------------------------------

    async def start(
        self,
        request: GenerationRequest,
        origin: CommandOrigin,
        *,
        source: SourceReader | None = None,
    ) -> JobRecord | None:
        """`/pokemon`: validate, admit, submit and show a new job; None when it was refused
        (the refusal was shown to the user). See `Intake.start`."""
        return await self.intake.start(request, origin, source=source)

    async def regenerate(self, origin: VariationOrigin) -> JobRecord | None:
        """🔁 (reaction or button): the parent's request with a fresh seed (a set of the same
        count), for the user who asked, once at a time per (user, parent), where that user
        may use /pokemon."""
        request = replace(request_as_drawn(origin.parent), seed=random_seed())
        source = None
        if request.strength and origin.parent.reply_to_message_id is not None:
            # A 🎨 result: a new variation of the same source picture, read again from the
            # message it replied to (a picture from `/pokemon image:` is gone: refused).
            source = self.intake.result_picture(
                origin, origin.parent.reply_to_message_id, source_picture_of(origin.parent)
            )
        return await self.intake.start_child(origin, request, source)

    async def vary(self, origin: VariationOrigin, strength: float) -> JobRecord | None:
        """🎨 (reaction or button): a new picture from the result picture (`origin.picture`
        of a set; a reaction takes the first), repainting `strength` of it, with the parent's
        prompt and a new seed, for whoever asked (their quota), replying to that picture; as
        `regenerate` otherwise."""
        request = replace(
            request_as_drawn(origin.parent),
            seed=random_seed(),
            count=1,  # one picture from one picture
            strength=strength,
        )
        source = self.intake.result_picture(origin, origin.message_id, origin.picture)
        return await self.intake.start_child(origin, request, source)

    async def upscale(self, origin: ButtonOrigin) -> JobRecord | None:
        """⬆️: picture `origin.picture` of the pressed result, 4x larger, as a reply to it, for
        whoever pressed (one picture of their limit); as 🔁 otherwise (see `Upscales`)."""
        return await self.upscales.start(origin)

    async def cancel(self, job_id: int, by_user_id: int) -> bool:
        """✖: cancel a queued job (it never runs) or a running one (it stops within a step
        and nothing is decoded). The caller checked that `by_user_id` may (the requester or
        an admin). The row ends `cancelled` with who did it (never counted against a quota)
        and the job's message says so. Works after a restart too: a job on disk that no
        generator holds any more is marked cancelled and its message edited. False when the
        job had already finished."""
        store = self.ctx.store
        active = self.ctx.active.get(job_id)
        if active is not None and active.handle is not None:
            if active.finished or active.handle.done:
                return False
            active.cancelled_by = by_user_id
            if not active.handle.cancel():
                active.cancelled_by = None
                return False
            log.info("job=%s cancel requested by user=%s", job_id, by_user_id)
            return True  # the follower sees Cancelled and says who cancelled it
        handle = self.ctx.generator.handle(job_id)
        if handle is not None:  # held by the generator but not followed here: let it end
            return handle.cancel() and await store.jobs.mark_cancelled(job_id, by=by_user_id)
        job = await store.jobs.get(job_id)
        if job is None or not await store.jobs.mark_cancelled(job_id, by=by_user_id):
            return False
        log.info("job=%s (on disk only) cancelled by user=%s", job_id, by_user_id)
        text = self.ctx.presenter.cancelled_text(job.locale, by_user_id)
        await self.delivery.edit_recorded(job, text)
        return True

    async def queue_places(self, user_id: int) -> QueuePlaces:
        """`/queue`: this user's unfinished jobs, oldest first, with their place (from the
        latest queue event of each) and the generator's queue as a whole."""
        places: list[QueuePlace] = []
        for job in await self.ctx.store.jobs.by_user_pending(user_id):
            active = self.ctx.active.get(job.id)
            position, eta = (None, None) if active is None else active.place(job.state == "running")
            places.append(QueuePlace(job.id, position, eta))
        status = await self.ctx.generator.status()
        return QueuePlaces(places, queued=status.queued, running=status.running)

    async def forget_user(self, user_id: int) -> tuple[list[int], int]:
        """`/privacy`'s delete: stop the user's jobs this process runs (`cancel_user_jobs`),
        then cancel and delete their data in one storage operation
        (`PrivacyRepository.forget_user`, as `pokemon-bot forget-user` does). Returns the job
        ids cancelled and the rows deleted; other users' data is untouched."""
        stopped = await self.cancel_user_jobs(user_id)
        forgotten = await self.ctx.store.privacy.forget_user(user_id)
        return sorted({*stopped, *forgotten.cancelled}), forgotten.deleted

    async def cancel_user_jobs(self, user_id: int) -> list[int]:
        """The generator's side of forgetting a user: cancel every job of `user_id` this
        process follows (a queued one leaves the queue, never drawn; a running one stops within
        a step, never posted) and wait for them to end. Their rows are the storage's
        (`PrivacyRepository.forget_user`). Returns the ids cancelled."""
        mine = [
            (active.job_id, active.handle)
            for active in self.ctx.active.values()
            if active.user_id == user_id and active.handle is not None and not active.finished
        ]
        for _, handle in mine:
            handle.cancel()
        for _, handle in mine:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(handle.wait(), CANCEL_WAIT_SECONDS)
        return [job_id for job_id, _ in mine]

    async def resume(self, *, max_age: float) -> tuple[int, int]:
        """Start-up: queue again the jobs the last process left (see `Resume.resume`)."""
        return await self.resumer.resume(max_age=max_age)

    def stop_intake(self) -> None:
        """New commands and 🔁 are refused from now on; running work carries on."""
        self.ctx.accepting = False
        self.ctx.ending.set()

    async def drain(self, within: float | None = None) -> None:
        """Wait for deliveries in flight (after the generator stopped) so none is cut off, then
        try once more to record outcomes the database refused."""
        ctx = self.ctx
        ctx.stopping = True
        ctx.ending.set()
        ctx.connected.set()  # a resumed job still waiting to show itself may leave now
        await ctx.tasks.wait(within)
        await self.delivery.record_remaining()
        await ctx.tasks.close()
