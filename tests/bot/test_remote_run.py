"""`pokemon-bot run` with `POKEMON_REDIS_URL`: the bot loads no model and its pictures come from
a `pokemon-bot worker` process through Redis; with no worker online, users are told at once,
while jobs resumed from the last process wait on disk for one.

Everything real: a `redis-server` on a unix socket, the bot and the worker as subprocesses
(the worker on the tiny checkpoint), the loopback fake Discord.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.i18n import t
from bot.jobs import new_job
from bot.settings import Settings
from bot.validation import validate_pokemon
from storage import Storage
from tests.bot.conftest import TINY_MODEL, notices_for, png_of
from tests.fakediscord import FakeDiscord
from tests.redisprocs import RedisServer, Workers
from tests.reliability.test_process import bot_env


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()


async def stats_text(fake: FakeDiscord) -> str:
    """The text of `/stats`, as the server's moderator sees it."""
    record = await fake.invoke("stats", {}, user=fake.moderator)
    await record.wait_until(
        lambda r: r.original_message is not None and bool(r.original_message.attachments), 60
    )
    assert record.original_message is not None
    return record.original_message.content


async def test_run_with_redis_loads_no_model_and_delivers_a_workers_picture(
    fake_discord: FakeDiscord, redis_server: RedisServer, tmp_path: Path
) -> None:
    fake = fake_discord
    no_worker_line = t("stats.no_workers", "en", detail="").split("(")[0]
    db = tmp_path / "bot.sqlite3"
    log = (tmp_path / "bot.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path,
        env=bot_env(
            fake, db,
            POKEMON_REDIS_URL=redis_server.url,
            # This bot's keys, apart from another bot's on the same Redis.
            POKEMON_REDIS_PREFIX="bot-a",
            # No such model: the bot must not try to load one.
            POKEMON_MODEL=str(db.parent / "no-model-here"),
        ),
        stdout=log, stderr=log,
    )  # fmt: skip
    workers = Workers(redis_server.url, tmp_path)
    try:
        # Another bot's worker on the same Redis, under the default prefix: never ours.
        workers.start("other-bots", model="fake:step=0.01", max_batch=1)
        await fake.wait_until(fake.gateway.live_sessions, 120)
        await asyncio.sleep(0.2)
        # No worker of this bot online yet: refused at once with a clear message, nothing
        # counted (the other bot's worker does not count).
        early = await fake.invoke("pokemon", {"prompt": "まだ"}, user=fake.bob)
        await fake.wait_until(lambda: early.followups, 30)
        assert early.followups[0].content == t("error.generation_unavailable", "en")
        # An admin's /stats says why.
        assert no_worker_line in await stats_text(fake)

        workers.start(
            "gpu-0",
            model=str(TINY_MODEL),
            max_batch=1,
            extra_env={"POKEMON_REDIS_PREFIX": "bot-a"},
        )
        # The worker needs a few seconds to load and announce itself: until it has, the bot
        # refuses at once (as above), so ask again, as a user would.
        for _ in range(60):
            record = await fake.invoke("pokemon", {"prompt": "ピカチュウ"}, user=fake.alice)
            await fake.wait_until(lambda r=record: r.edits or r.followups, 60)
            if not record.followups:
                break
            await asyncio.sleep(1.0)

        def result() -> bool:
            message = record.original_message
            return message is not None and bool(message.attachments and message.embeds)

        await fake.wait_until(result, 120)
        message = record.original_message
        assert message is not None
        assert png_of(message).size == (64, 64)
        stats = await stats_text(fake)
        assert no_worker_line not in stats
        assert "Generation: 1 worker online" in stats
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 60)
        workers.stop_all()
    assert re.search(r"job=\d+: done", workers.log("gpu-0"))
    assert not re.search(r"job=\d+: ", workers.log("other-bots"))
    output = (tmp_path / "bot.log").read_text(errors="replace")
    assert "no model loaded here" in output
    assert "loading model" not in output
    assert "Traceback" not in output
    async with await Storage.open(db) as store:
        (done,) = [j for j in await store.jobs.recent_for_user(fake.alice.id) if j.state == "done"]
        assert done.result_message_id == record.original_message_id
        refused = await store.jobs.recent_for_user(fake.bob.id)
        assert [(j.state, j.fault) for j in refused] in ([], [("failed", "rejected")])
        assert (await store.limits.quota(fake.guild.id, fake.bob.id)).used == 0


async def test_jobs_resumed_before_any_worker_is_online_wait_on_disk_and_are_delivered(
    fake_discord: FakeDiscord, redis_server: RedisServer, tmp_path: Path, bot_settings: Settings
) -> None:
    """`docker compose up` after a reboot: the bot restarts with a job on disk before its
    workers have announced themselves. The job waits (still queued, nobody told anything)
    and is drawn once a worker is online."""
    fake = fake_discord
    db = tmp_path / "bot.sqlite3"
    env = bot_env(fake, db, POKEMON_REDIS_URL=redis_server.url)
    settings = bot_settings
    shown = await fake.post_message(fake.bot_user, fake.channel, "Queued: position **1**.")
    async with await Storage.open(
        db, default_limit=settings.default_limit, max_pending=settings.pokemon_user_max_pending
    ) as store:
        admission = await store.admit(
            new_job(
                # Not translated: the fake engine reports no prompt it was given.
                validate_pokemon(settings, "まってて", seed=3, translate="off"),
                user_id=fake.alice.id,
                guild_id=fake.guild.id,
                channel_id=fake.channel.id,
                locale="en",
            )
        )
        assert admission.job is not None
        job_id = admission.job.id
        await store.jobs.set_message(job_id, progress_message_id=shown.id)
    log = (tmp_path / "bot.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env, stdout=log, stderr=log
    )
    workers = Workers(redis_server.url, tmp_path)
    try:
        await fake.wait_until(fake.gateway.live_sessions, 120)
        await asyncio.sleep(4.0)  # read back (no picture yet), then offered again a few times
        async with await Storage.open(db) as store:
            row = await store.jobs.get(job_id)
        assert row is not None
        assert (row.state, row.error_code) == ("queued", None)
        assert shown.content == "Queued: position **1**."  # nobody was told it failed
        assert notices_for(fake, fake.alice) == []

        workers.start("gpu-0", model="fake:step=0.01", max_batch=1)
        await fake.wait_until(lambda: bool(shown.attachments), 120)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 60)
        workers.stop_all()
    assert proc.returncode == 0
    async with await Storage.open(db) as store:
        row = await store.jobs.get(job_id)
    assert row is not None
    assert (row.state, row.result_message_id) == ("done", shown.id)
    assert [m.id for m in fake.bot_messages()] == [shown.id]  # in its own message, nothing new
    output = (tmp_path / "bot.log").read_text(errors="replace")
    assert "Traceback" not in output
