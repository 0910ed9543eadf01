"""`bot.jobs.resume.Resume`: a job the last process left is offered again while the generator
cannot take it, and handed over once it can; a shutdown leaves it on disk. A real SQLite
file and the real intake; the generator is a stand-in that is unavailable, then available."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest_asyncio

from bot.jobs.intake import Intake
from bot.jobs.resume import Resume
from bot.jobs.rows import new_job
from bot.jobs.state import ActiveJob
from bot.messaging import ChannelPacer
from generation.errors import GeneratorUnavailableError
from generation.types import GenerationRequest
from storage import Storage
from tests.bot.jobs.fakes import context

USER, GUILD, CHANNEL = 7, 100, 200


class LateGenerator:
    """Unavailable for the first `unavailable` submits (no worker has announced itself yet)."""

    def __init__(self, unavailable: int) -> None:
        self.unavailable = unavailable
        self.submits: list[int] = []

    async def submit(self, job_id: int, user_id: int, request: GenerationRequest) -> object:
        self.submits.append(job_id)
        if len(self.submits) <= self.unavailable:
            raise GeneratorUnavailableError("no worker online")
        return object()  # the handle: followed by the stand-in follower below


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[Storage]:
    store = await Storage.open(tmp_path / "jobs.sqlite3")
    try:
        yield store
    finally:
        await store.close()


async def left_by_last_process(store: Storage) -> int:
    request = GenerationRequest(prompt="ピカチュウ", seed=3, steps=3, height=64, width=64)
    admission = await store.admit(
        new_job(request, user_id=USER, guild_id=GUILD, channel_id=CHANNEL, locale="en")
    )
    assert admission.job is not None
    return admission.job.id


def resume_with(store: Storage, generator: LateGenerator) -> tuple[Resume, list[ActiveJob]]:
    ctx = context(store=store, generator=generator)
    followed: list[ActiveJob] = []

    async def follow(active: ActiveJob) -> None:
        followed.append(active)

    intake = Intake(ctx, follow=follow, on_submitted=lambda: None)
    resume = Resume(ctx, intake, delivery=None, pacer=ChannelPacer())  # type: ignore[arg-type]
    resume.retry_first = 0.01
    return resume, followed


async def wait_for(condition: Callable[[], object], within: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():  # noqa: ASYNC110 - the parts under test set no event
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), within)


async def test_a_resumed_job_is_offered_again_until_the_generator_takes_it(store: Storage) -> None:
    job_id = await left_by_last_process(store)
    generator = LateGenerator(unavailable=2)
    resume, followed = resume_with(store, generator)
    assert await resume.resume(max_age=3600) == (1, 0)
    assert resume.waiting  # unavailable at start: it waits, nobody is told anything
    await wait_for(lambda: followed)
    assert generator.submits == [job_id, job_id, job_id]
    (active,) = followed
    assert active.job_id == job_id
    assert active.resumed
    assert resume.waiting == []
    row = await store.jobs.get(job_id)
    assert row is not None
    assert row.state == "queued"
    await resume.ctx.tasks.close()


async def test_a_waiting_job_stays_on_disk_when_the_service_stops(store: Storage) -> None:
    job_id = await left_by_last_process(store)
    generator = LateGenerator(unavailable=1000)
    resume, followed = resume_with(store, generator)
    await resume.resume(max_age=3600)
    await wait_for(lambda: len(generator.submits) >= 2)
    resume.ctx.ending.set()  # stop_intake()
    await wait_for(lambda: not resume.waiting)
    await resume.ctx.tasks.wait(5.0)
    assert followed == []
    row = await store.jobs.get(job_id)
    assert row is not None
    assert row.state == "queued"
    await resume.ctx.tasks.close()


async def test_a_job_cancelled_while_it_waited_is_not_offered_again(store: Storage) -> None:
    job_id = await left_by_last_process(store)
    generator = LateGenerator(unavailable=1)
    resume, followed = resume_with(store, generator)
    resume.retry_first = 0.2
    await resume.resume(max_age=3600)
    assert await store.jobs.mark_cancelled(job_id, by=USER)  # ✖ on the message meanwhile
    await wait_for(lambda: not resume.waiting)
    assert generator.submits == [job_id]
    assert followed == []
    await resume.ctx.tasks.close()
