"""`bot.jobs.view.JobView`: the live view's pacing, on a fake clock (no Discord)."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

import bot.messaging as bot_messaging
from bot.jobs.delivery import Delivery
from bot.jobs.state import ActiveJob
from bot.jobs.view import JobView
from bot.messaging import EditThrottle
from generation.generator import Queued
from generation.types import Progress
from tests.bot.jobs.fakes import active_job, context


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ShownTexts:
    """The delivery side of the view: records what was shown, when (on the fake clock)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.shown: list[tuple[float, str]] = []
        self.previews: list[bytes | None] = []  # what each edit uploaded

    async def show(self, active: ActiveJob, text: str, *, preview: bytes | None = None) -> None:
        self.shown.append((self.clock(), text))
        self.previews.append(preview)
        if preview is not None:
            active.preview_shown = preview  # as `Delivery.show` records once it is on Discord

    def texts(self) -> list[str]:
        return [text for _, text in self.shown]


def view_with_clock() -> tuple[JobView, ShownTexts, ActiveJob, Clock]:
    clock = Clock()
    shown = ShownTexts(clock)
    view = JobView(context(progress_interval=2.0), cast(Delivery, shown))
    view.pacer.clock = clock
    active = active_job(throttle=EditThrottle(2.0, clock=clock))
    return view, shown, active, clock


def progress(n: int) -> Progress:
    return Progress(job_id=1, step=n, total=5, elapsed=0.1 * n)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.02)


async def test_steps_between_two_edits_coalesce_into_one_edit_of_the_latest_step() -> None:
    view, shown, active, clock = view_with_clock()
    view.progress(active, progress(1))
    await settle()
    assert shown.texts() == ["step 1/5"]
    clock.now = 1.99  # the next edit is allowed 0.01 s from now
    for n in (2, 3, 4):
        view.progress(active, progress(n))
    await settle()  # fired once before the interval had passed on the clock: waits again
    assert shown.texts() == ["step 1/5"]
    clock.now = 2.0
    await settle()
    assert shown.texts() == ["step 1/5", "step 4/5"]
    assert [at for at, _ in shown.shown] == [0.0, 2.0]


async def test_an_edit_uploads_the_newest_preview_only_when_it_changed() -> None:
    view, shown, active, clock = view_with_clock()
    first, second = b"jpeg 1", b"jpeg 2"
    view.progress(active, Progress(1, 1, 5, 2.1, first))
    await settle()
    clock.now = 2.0
    view.progress(active, progress(2))  # no new preview: a text edit
    await settle()
    clock.now = 4.0
    view.progress(active, Progress(1, 3, 5, 4.1, second))
    view.progress(active, progress(4))  # coalesced: its edit still carries the new preview
    await settle()
    clock.now = 6.0
    view.progress(active, progress(5))
    await settle()
    assert shown.texts() == ["step 1/5", "step 2/5", "step 4/5", "step 5/5"]
    assert shown.previews == [first, None, second, None]


async def test_the_first_queue_place_shows_at_once_and_a_moved_queue_waits_for_the_throttle() -> (
    None
):
    view, shown, active, clock = view_with_clock()
    await view.queued(active, Queued(position=3, eta_seconds=None))
    assert shown.texts() == ["queued 3"]
    clock.now = 1.99
    await view.queued(active, Queued(position=2, eta_seconds=None))
    await view.queued(active, Queued(position=1, eta_seconds=None))
    clock.now = 2.0
    await settle()
    assert shown.texts() == ["queued 3", "queued 1"]


async def test_nothing_is_shown_once_the_job_finished_or_the_service_is_stopping() -> None:
    view, shown, active, _ = view_with_clock()
    active.finished = True
    view.progress(active, progress(1))
    await view.queued(active, Queued(position=1, eta_seconds=None))
    await settle()
    assert shown.texts() == []

    view, shown, active, _ = view_with_clock()
    view.ctx.stopping = True  # the job resumes, and shows itself, after the restart
    view.progress(active, progress(1))
    await settle()
    assert shown.texts() == []


async def test_two_jobs_in_one_channel_share_the_channel_pacer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    view, shown, first, clock = view_with_clock()
    second = active_job(2, throttle=EditThrottle(2.0, clock=clock))
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)  # the pacer's wait, recorded instead of slept

    monkeypatch.setattr(bot_messaging.asyncio, "sleep", sleep)
    await view.show(first, "one")
    await view.show(second, "two")
    clock.now = 5.0  # long after: no wait
    await view.show(first, "three")
    assert shown.texts() == ["one", "two", "three"]
    assert sleeps == [1.2]  # 0.6 × the per-message interval after the first, same channel
