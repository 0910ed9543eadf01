"""The watcher: while jobs are in hand, rows changed by another process (`pokemon-bot
forget-user` cancels and deletes a user's jobs) take their jobs from the generator."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from storage import StorageError

if TYPE_CHECKING:
    from bot.jobs.state import JobContext

log = logging.getLogger(__name__)

# How often the database is asked whether another process changed it.
ROW_WATCH_SECONDS = 1.0


class RowWatcher:
    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.interval = ROW_WATCH_SECONDS
        self._task: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        """Start watching (a job was just handed to the generator) unless already watching."""
        if self._task is None or self._task.done():
            self._task = self.ctx.tasks.spawn(self.watch(), name="row-watch")

    async def watch(self) -> None:
        """While jobs are in hand: when another process changed the database, cancel each job
        whose row is no longer queued or running, so a queued one leaves the generator's queue
        and is never drawn. A job already drawing stops within a step; one that finishes first
        is never posted (the follower reads the row). Costs one `PRAGMA data_version` a second,
        a query only when something changed. Ends when no job is left."""
        ctx = self.ctx
        seen: int | None = None
        while ctx.active and not ctx.stopping:
            await asyncio.sleep(self.interval)
            try:
                version = await ctx.store.data_version()
                if version == seen:
                    continue
                live = [active for active in ctx.active.values() if active.live]
                pending: set[int] = (
                    {job.id for job in await ctx.store.jobs.pending()} if live else set()
                )
            except StorageError as exc:
                log.warning("could not check for jobs cancelled elsewhere: %s", exc)
                continue
            seen = version
            for active in live:
                if active.job_id in pending or not active.live or active.handle is None:
                    continue
                log.info(
                    "job=%s was cancelled or deleted by another process; stopping it",
                    active.job_id,
                )
                active.handle.cancel()
