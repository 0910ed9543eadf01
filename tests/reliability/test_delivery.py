"""A picture made is a picture shown: the final upload survives a dropped connection (before or
after Discord stored it), and a crash after the upload landed does not post it twice.

The loopback fake cuts the TCP connection mid-request (`fake.drop_next`), carrying the call out
first or not; discord.py then raises `aiohttp.ServerDisconnectedError`, which it never retries
on its own. Real bot, worker thread, SQLite file; the crash test kills a real bot process.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from bot.messaging import REGENERATE_EMOJI
from storage import Storage
from tests.bot.conftest import BotRig, notices_for, png_of
from tests.fakediscord import FakeDiscord, FakeMessage, FaultRule
from tests.reliability.test_process import bot_env

ORIGINAL = "/webhooks/*/*/messages/@original"
CHANNEL_MESSAGE = "/channels/*/messages/*"


def connection_errors() -> float:
    """`pokemon_discord_api_errors_total{kind="connection"}` as the metrics endpoint serves it."""
    value = REGISTRY.get_sample_value("pokemon_discord_api_errors_total", {"kind": "connection"})
    return value or 0.0


def pictures(fake: FakeDiscord) -> list[FakeMessage]:
    return [m for m in fake.bot_messages() if m.attachments]


async def settle(fake: FakeDiscord, bot_rig: BotRig) -> None:
    bot = bot_rig.bots[-1]
    await fake.wait_until(lambda: not bot.service.active, 30)


@pytest.mark.parametrize("landed", [False, True], ids=["before-landing", "after-landing"])
async def test_a_dropped_connection_on_the_final_upload_ends_with_one_picture_and_a_done_row(
    bot_rig: BotRig, fake_discord: FakeDiscord, landed: bool
) -> None:
    fake = fake_discord
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        bot.service.retry_delays = (0.05, 0.05)
        # One progress edit, then none until the picture: the next PATCH is the final upload.
        bot.service.progress_interval = 60.0
        record = await fake.invoke("pokemon", {"prompt": "ピカチュウ"}, user=fake.alice)
        await fake.wait_until(lambda: bot.generator.worker.running == 1, 30)
        # Every progress edit has no file; the final one is the first with one.
        await record.wait_edits(1)
        drop = fake.drop_next("PATCH", ORIGINAL, times=1, process=landed)
        errors_before = connection_errors()
        bot_rig.engine.open_gate()
        result = await bot_rig.wait_result(record)
        await settle(fake, bot_rig)
        assert drop.remaining == 0  # the connection really dropped once
        assert connection_errors() == errors_before + 1  # and the metric counted it
        assert pictures(fake) == [result]  # exactly one visible picture
        await fake.wait_until(lambda: result.reaction_users(REGENERATE_EMOJI))
        (job,) = await bot.store.jobs.recent_for_user(fake.alice.id)
        assert (job.state, job.result_message_id) == ("done", result.id)
        assert png_of(result).size == (64, 64)


@pytest.mark.parametrize("landed", [False, True], ids=["before-landing", "after-landing"])
async def test_a_dropped_connection_on_a_variations_final_edit_ends_done_with_its_regen(
    bot_rig: BotRig, fake_discord: FakeDiscord, landed: bool
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        bot.service.retry_delays = (0.05, 0.05)
        record = await fake.invoke("pokemon", {"prompt": "ピカチュウ"}, user=fake.alice)
        first = await bot_rig.wait_result(record)
        await fake.wait_until(lambda: first.reaction_users(REGENERATE_EMOJI))
        bot_rig.engine.close_gate()
        bot.service.progress_interval = 60.0  # the placeholder's next PATCH is the picture
        await fake.react(fake.bob, first.channel_id, first.id, REGENERATE_EMOJI)
        await fake.wait_until(lambda: bot.generator.worker.running == 1, 30)

        def placeholder() -> FakeMessage | None:
            found = [
                m
                for m in fake.bot_messages(first.channel_id)
                if m.message_reference and int(m.message_reference["message_id"]) == first.id
            ]
            return found[0] if found else None

        await fake.wait_until(placeholder, 30)
        drop = fake.drop_next("PATCH", CHANNEL_MESSAGE, times=1, process=landed)
        bot_rig.engine.open_gate()
        await settle(fake, bot_rig)
        variation = placeholder()
        assert variation is not None
        assert drop.remaining == 0
        assert variation.attachments
        assert pictures(fake) == [first, variation]
        await fake.wait_until(lambda: variation.reaction_users(REGENERATE_EMOJI))
        (child,) = await bot.store.jobs.recent_for_user(fake.bob.id)
        assert (child.state, child.result_message_id) == ("done", variation.id)
        # Nobody was told it failed.
        assert notices_for(fake, fake.bob) == []


def every_retry_drops_after_landing(fake: FakeDiscord) -> list[FaultRule]:
    fake.drop_next("PATCH", ORIGINAL, times=2, process=True)  # the try and its one retry
    return []


def retry_refused_after_a_try_that_landed(fake: FakeDiscord) -> list[FaultRule]:
    # The upload lands but its answer is lost; the retry is refused (the token ran out during
    # the retries): moving to the channel would show the picture twice.
    fake.drop_next("PATCH", ORIGINAL, times=1, process=True)
    return [fake.fail_next("PATCH", ORIGINAL, times=1, status=401)]


def reading_back_through_the_token_refused(fake: FakeDiscord) -> list[FaultRule]:
    # Every try lands unanswered, and reading back through the interaction is refused too
    # (the token is spent): the original response is the bot's own message, its id recorded
    # at the defer, readable through the channel.
    fake.drop_next("PATCH", ORIGINAL, times=2, process=True)
    return [fake.fail_next("GET", ORIGINAL, times=1, status=401)]


@pytest.mark.parametrize(
    "arrange",
    [
        every_retry_drops_after_landing,
        retry_refused_after_a_try_that_landed,
        reading_back_through_the_token_refused,
    ],
)
async def test_a_final_upload_that_landed_unanswered_is_read_back_not_lost_or_posted_again(
    bot_rig: BotRig, fake_discord: FakeDiscord, arrange: Callable[[FakeDiscord], list[FaultRule]]
) -> None:
    fake = fake_discord
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        bot.service.retry_delays = (0.05,)
        bot.service.progress_interval = 60.0
        record = await fake.invoke("pokemon", {"prompt": "ピカチュウ"}, user=fake.alice)
        await fake.wait_until(lambda: bot.generator.worker.running == 1, 30)
        await record.wait_edits(1)
        rules = arrange(fake)
        bot_rig.engine.open_gate()
        result = await bot_rig.wait_result(record)
        for rule in rules:
            await fake.wait_until(lambda rule=rule: rule.hits, 30)
        await settle(fake, bot_rig)
        assert pictures(fake) == [result]  # kept, never deleted, nothing posted besides
        assert fake.requests_to("POST", "/channels/*/messages") == []
        (job,) = await bot.store.jobs.recent_for_user(fake.alice.id)
        assert (job.state, job.result_message_id) == ("done", result.id)
        await fake.wait_until(lambda: result.reaction_users(REGENERATE_EMOJI))


async def test_a_kill_after_the_upload_landed_ends_with_one_picture_after_restart(
    bot_rig: BotRig, fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    fake = fake_discord
    db = tmp_path / "bot.sqlite3"
    log = (tmp_path / "bot.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=bot_env(fake, db, POKEMON_TRANSLATE="off"),
        stdout=log, stderr=log,
    )  # fmt: skip
    try:
        await fake.wait_until(fake.gateway.live_sessions, 120)
        await asyncio.sleep(0.2)
        # Discord stores the final upload, then the connection drops, again and again: the
        # process is killed while it is still retrying, the row still `running`.
        fake.drop_next("PATCH", ORIGINAL, times=50, process=True)
        record = await fake.invoke("pokemon", {"prompt": "ピカチュウ"}, user=fake.alice)
        await fake.wait_until(
            lambda: record.original_message is not None and record.original_message.attachments,
            120,
        )
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    async with await Storage.open(db) as store:
        (job,) = await store.jobs.recent_for_user(fake.alice.id)
    assert job.state == "running"
    fake.faults.clear()  # connections behave again

    bot_rig.settings = bot_rig.settings.model_copy(update={"pokemon_db": db})
    calls = bot_rig.engine.calls
    async with bot_rig.run() as bot:
        original = record.original_message
        assert original is not None
        await fake.wait_until(lambda: original.reaction_users(REGENERATE_EMOJI), 30)
        row = await bot.store.jobs.get(job.id)
        assert row is not None
        assert (row.state, row.result_message_id) == ("done", original.id)
        assert bot_rig.engine.calls == calls  # not drawn again
        assert pictures(fake) == [original]  # and not posted twice
