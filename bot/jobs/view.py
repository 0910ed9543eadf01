"""The live view of a job: its place in the queue and its progress (with the newest preview of
its picture, when the generation side made one), shown in its message, and
the pacing of those edits (at most one every `progress_interval` per message, `EditThrottle`;
our cosmetic edits in one channel stay under Discord's per-channel limit together,
`ChannelPacer`). It decides nothing about a job's state: the texts come from the presenter and
the message is delivery's (`Delivery.show`)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from bot.messaging import ChannelPacer

if TYPE_CHECKING:
    from bot.jobs.delivery import Delivery
    from bot.jobs.state import ActiveJob, JobContext
    from generation.generator import Queued
    from generation.types import Progress


class JobView:
    def __init__(self, ctx: JobContext, delivery: Delivery) -> None:
        self.ctx = ctx
        self.delivery = delivery
        # At most one cosmetic edit every 0.6 × the per-message interval in one channel.
        self.pacer = ChannelPacer(interval=0.6 * ctx.progress_interval)

    async def queued(self, active: ActiveJob, event: Queued) -> None:
        """A queue event: the first place is shown at once, later moves throttled."""
        first = active.queued_at is None
        active.queued_at = event
        if first:
            text = self.queued_text(active)
            if text is not None:
                await self.show(active, text)
        else:  # the queue moved: the new place, throttled like progress edits
            self.request_edit(active)

    def progress(self, active: ActiveJob, event: Progress) -> None:
        """A step drawn: shown when the throttle next allows (steps in between coalesce; the
        newest preview among them goes with that edit)."""
        active.latest = event
        if event.preview is not None:
            active.preview = event.preview
        self.request_edit(active)

    def queued_text(self, active: ActiveJob) -> str | None:
        queued = active.queued_at
        if queued is None or active.latest is not None:
            return None  # already running: progress edits take over
        return self.ctx.presenter.queued_text(active.locale, queued.position, queued.eta_seconds)

    def request_edit(self, active: ActiveJob) -> None:
        """Coalesce steps: edit now if the throttle allows, else once when it next allows."""
        if active.finished or active.edit_scheduled:
            return
        active.edit_scheduled = True
        tasks = self.ctx.tasks
        if active.throttle.ready():
            tasks.spawn(self._edit(active))
        else:
            asyncio.get_running_loop().call_later(
                active.throttle.wait_time(), lambda: tasks.spawn(self._edit(active))
            )

    async def _edit(self, active: ActiveJob) -> None:
        async with active.lock:
            active.edit_scheduled = False
            progress = active.latest
            if active.finished or (progress is None and active.queued_at is None):
                return
            if not active.throttle.ready():  # a queued-position edit slipped in meanwhile
                self.request_edit(active)
                return
            if progress is None:  # still waiting: its new place in the queue
                text = self.queued_text(active)
                if text is not None:
                    await self._show_locked(active, text)
                return
            text = self.ctx.presenter.progress_text(
                active.locale, progress.step, progress.total, kind=active.request.kind
            )
            # An edit with an upload costs more than a text edit: only a new preview goes.
            preview = active.preview if active.preview is not active.preview_shown else None
            await self._show_locked(active, text, preview)

    async def show(self, active: ActiveJob, text: str) -> None:
        async with active.lock:
            if not active.finished:
                await self._show_locked(active, text)

    async def _show_locked(
        self, active: ActiveJob, text: str, preview: bytes | None = None
    ) -> None:
        if self.ctx.stopping:
            return  # shutting down: the job resumes (and shows itself) after the restart
        await self.pacer.wait(active.dest.channel_id)
        try:
            await self.delivery.show(active, text, preview=preview)
        finally:
            active.throttle.mark()
