"""`bot.jobs.watcher.RowWatcher`: a job whose row another process cancelled or deleted is
taken from the generator; the others are left alone. A real SQLite file, opened twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.jobs.rows import new_job
from bot.jobs.watcher import RowWatcher
from generation.types import GenerationRequest
from storage import Storage
from tests.bot.jobs.fakes import active_job, context


class Handle:
    def __init__(self) -> None:
        self.cancelled = False
        self.cancel_called = asyncio.Event()

    @property
    def done(self) -> bool:
        return self.cancelled

    def cancel(self) -> bool:
        self.cancelled = True
        self.cancel_called.set()
        return True


async def test_a_row_cancelled_by_another_process_stops_its_job_only(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = await Storage.open(path)
    other_process = await Storage.open(path)  # `pokemon-bot forget-user`, say
    try:
        request = GenerationRequest(prompt="ピカチュウ")
        ids = []
        for user in (7, 8):
            row = new_job(request, user_id=user, guild_id=100, channel_id=200, locale="en")
            admission = await store.admit(row)
            assert admission.job is not None
            ids.append(admission.job.id)
        ctx = context(store=store)
        handles = {job_id: Handle() for job_id in ids}
        for job_id, handle in handles.items():
            active = active_job(job_id)
            active.handle = handle  # type: ignore[assignment]
            ctx.active[job_id] = active
        watcher = RowWatcher(ctx)
        watcher.interval = 0.01
        watcher.ensure_running()
        await asyncio.sleep(0.05)
        assert not any(handle.cancelled for handle in handles.values())
        assert await other_process.jobs.mark_cancelled(ids[0], by=7)
        await asyncio.wait_for(handles[ids[0]].cancel_called.wait(), 5)
        assert not handles[ids[1]].cancelled
        ctx.active.clear()  # no job left in hand: the watcher ends
        await ctx.tasks.wait(5.0)
        assert len(ctx.tasks) == 0
    finally:
        await other_process.close()
        await store.close()
