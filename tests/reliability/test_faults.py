"""Faults injected into a running bot, one per test: the device, Discord's REST and gateway,
the database, and the bot's place in a guild. Each job still ends in a terminal state (or
stays on disk to resume), the user is told, and the bot stays up unless it must restart.

The real bot, worker and SQLite file, against the loopback fake Discord (`tests/bot/conftest.py`).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.client import EXIT_WORKER_FATAL
from bot.i18n import t
from bot.messaging import REGENERATE_EMOJI
from generation.errors import FatalDeviceError, OutOfMemoryError
from storage import NewJob, Storage, StorageError
from tests.bot.conftest import BotRig, png_of
from tests.fakediscord import FakeDiscord, FakeMessage, InteractionRecord, Perm

ORIGINAL = "/webhooks/*/*/messages/@original"
SAFETY_SECONDS = 30.0  # a helper thread's bound on waiting for the test: a hang guard only


def image_messages(fake: FakeDiscord) -> list[FakeMessage]:
    """Every live bot message that carries a picture, anywhere."""
    return [m for m in fake.bot_messages() if m.attachments]


async def job_state(bot_rig: BotRig, user_id: int) -> tuple[str, str | None]:
    (bot,) = bot_rig.bots[-1:]
    (job,) = await bot.store.jobs.recent_for_user(user_id)
    return job.state, job.error_code


async def wait_settled(fake: FakeDiscord, bot_rig: BotRig) -> None:
    """Until the bot's runner holds no job (every outcome delivered and recorded)."""
    bot = bot_rig.bots[-1]
    await fake.wait_until(lambda: not bot.service.active, 30)


async def start_running(fake: FakeDiscord, bot_rig: BotRig, prompt: str) -> InteractionRecord:
    """Invoke /pokemon with the gate closed and return once the worker holds the job."""
    bot = bot_rig.bots[-1]
    record = await fake.invoke("pokemon", {"prompt": prompt})
    await fake.wait_until(lambda: bot.generator.worker.running == 1, 30)
    return record


# -- the device ------------------------------------------------------------------------------


async def test_out_of_memory_fails_that_job_with_a_message_and_the_next_one_succeeds(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    bot_rig.engine.fail_with = OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
    async with bot_rig.run() as bot:
        failed = await fake_discord.invoke("pokemon", {"prompt": "おおきい"})
        (followup,) = await failed.wait_followups(1, within=30)
        assert followup.ephemeral
        assert followup.content == t("error.gen.out_of_memory", "en")
        assert await job_state(bot_rig, fake_discord.alice.id) == ("failed", "out_of_memory")

        following = await fake_discord.invoke(
            "pokemon", {"prompt": "ちいさい"}, user=fake_discord.bob
        )
        png_of(await bot_rig.wait_result(following))
        await wait_settled(fake_discord, bot_rig)
        assert bot.generator.worker.healthy
        assert not bot.is_closed()
        assert await job_state(bot_rig, fake_discord.bob.id) == ("done", None)


async def test_job_over_its_time_limit_is_stopped_and_the_user_told(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    bot_rig.settings = bot_rig.settings.model_copy(update={"pokemon_job_timeout": 0.001})
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        record = await start_running(fake_discord, bot_rig, "おそい")
        bot_rig.engine.open_gate()  # by now the 1 ms limit has passed: the first step stops it
        (followup,) = await record.wait_followups(1, within=30)
        assert followup.ephemeral
        assert followup.content == t("error.gen.timeout", "en")
        await wait_settled(fake_discord, bot_rig)
        assert await job_state(bot_rig, fake_discord.alice.id) == ("failed", "timeout")
        assert image_messages(fake_discord) == []
        assert bot.generator.worker.healthy


async def test_fatal_device_error_exits_non_zero_and_the_pending_jobs_complete_after_restart(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        broken = await start_running(fake_discord, bot_rig, "こわれる")
        waiting = await fake_discord.invoke("pokemon", {"prompt": "まつ"}, user=fake_discord.bob)
        await waiting.wait_edits(1)  # its place in the queue is shown
        bot_rig.engine.fail_with = FatalDeviceError("CUDA error: an illegal memory access")
        bot_rig.engine.open_gate()
        await fake_discord.wait_until(bot.is_closed, 30)
        await bot.wait_shutdown()
        assert bot.exit_code == EXIT_WORKER_FATAL
        (followup,) = broken.followups
        assert followup.content == t("error.gen.device_failed", "en")
        (kept,) = await bot.store.jobs.pending()  # the waiting job is still on disk
        assert kept.user_id == fake_discord.bob.id

    async with bot_rig.run() as bot:  # what the supervisor's restart does
        # The picture lands in the message bob already had, edited in place.
        original = fake_discord.messages[waiting.original_message_id]
        await fake_discord.wait_until(lambda: bool(original.attachments), 30)
        await wait_settled(fake_discord, bot_rig)
        job = await bot.store.jobs.get(kept.id)
        assert job is not None
        assert (job.state, job.result_message_id) == ("done", original.id)
        assert await bot.store.jobs.pending() == []


# -- Discord's REST API ----------------------------------------------------------------------


async def hold_until_progress_shown(
    fake: FakeDiscord, bot_rig: BotRig, prompt: str = "ピカチュウ"
) -> InteractionRecord:
    """A running job whose progress message is up; with a long edit interval the next
    PATCH of the original response is the final one, the one carrying the picture."""
    record = await start_running(fake, bot_rig, prompt)
    await record.wait_edits(1)
    return record


@pytest.mark.parametrize(
    ("status", "times", "landed"),
    [
        pytest.param(429, 2, False, id="429-twice"),
        pytest.param(503, 2, False, id="503-twice"),
        pytest.param(500, 1, True, id="500-after-the-edit-landed"),
        # Five 5xx answers exhaust discord.py's own webhook retries (1+3+5+7 s of its sleeps);
        # then only our retry keeps the picture from being lost or posted a second time.
        pytest.param(500, 5, True, id="500-five-times-landed", marks=pytest.mark.slow),
    ],
)
async def test_final_upload_failing_with_429_or_5xx_is_retried_and_delivered_exactly_once(
    bot_rig: BotRig, fake_discord: FakeDiscord, status: int, times: int, landed: bool
) -> None:
    bot_rig.progress_interval = 3600.0  # one progress edit, then the final one
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        bot.service.retry_delays = (0.05, 0.05, 0.05)
        record = await hold_until_progress_shown(fake_discord, bot_rig)
        rule = fake_discord.fail_next("PATCH", ORIGINAL, times=times, status=status, process=landed)
        bot_rig.engine.open_gate()
        result = await bot_rig.wait_result(record)
        await fake_discord.wait_until(lambda: result.reaction_users(REGENERATE_EMOJI), 30)
        await wait_settled(fake_discord, bot_rig)

        assert len(rule.hits) == times  # the fault really hit the final upload
        assert image_messages(fake_discord) == [result]  # once: no channel copy
        assert result.id == record.original_message_id
        assert len(result.attachments) == 1
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        assert (job.state, job.result_message_id) == ("done", result.id)


async def test_channel_post_of_a_late_result_is_retried_on_5xx_with_one_enforced_nonce(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    bot_rig.progress_interval = 3600.0  # one progress message attempt, then the picture
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        bot.service.retry_delays = (0.05, 0.05)
        # The progress post fails (it is not retried: the next edit supersedes it), the
        # placeholder's three tries fail (so the picture must be posted itself), then the
        # picture's post fails twice and our retry delivers it.
        rule = fake_discord.fail_next("POST", "/channels/*/messages", times=6, status=503)
        # 14.5 minutes old: the result goes to the channel with the bot token.
        record = await fake_discord.invoke("pokemon", {"prompt": "ヒトカゲ"}, age=14.5 * 60)
        await fake_discord.wait_until(lambda: len(rule.hits) == 1, 30)
        bot_rig.engine.open_gate()
        await fake_discord.wait_until(lambda: image_messages(fake_discord), 30)
        await wait_settled(fake_discord, bot_rig)

    assert len(rule.hits) == 6
    (result,) = image_messages(fake_discord)
    assert result.message_reference is not None
    assert int(result.message_reference["message_id"]) == record.original_message_id
    every_post = fake_discord.requests_to("POST", "/channels/*/messages")
    placeholder = [r for r in every_post[1:] if not r.files]
    posts = [r for r in every_post if r.files]
    assert [r.status for r in placeholder] == [503, 503, 503]
    assert [r.status for r in posts] == [503, 503, 200]
    # Discord returns the first message for a repeated nonce: a landed attempt is not doubled.
    for attempts in (placeholder, posts):
        nonces = {(r.json or {}).get("nonce") for r in attempts}
        assert len(nonces) == 1
        assert None not in nonces
        assert all((r.json or {}).get("enforce_nonce") is True for r in attempts)


async def test_a_channel_post_that_landed_but_answered_5xx_is_not_posted_twice(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    bot_rig.progress_interval = 3600.0
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        bot.service.retry_delays = (0.05, 0.05)
        # The progress post and the placeholder's three tries answer 503 before they are
        # made; the picture's post is carried out and then answers 500 (a lost response);
        # our retry repeats the same nonce.
        rule = fake_discord.fail_next("POST", "/channels/*/messages", times=4, status=503)
        record = await fake_discord.invoke("pokemon", {"prompt": "ヒトカゲ"}, age=14.5 * 60)
        await fake_discord.wait_until(lambda: len(rule.hits) == 1, 30)
        landed = fake_discord.fail_next(
            "POST", "/channels/*/messages", times=1, status=500, process=True
        )
        bot_rig.engine.open_gate()
        await fake_discord.wait_until(lambda: len(landed.hits) == 1, 30)
        await wait_settled(fake_discord, bot_rig)

        assert len(rule.hits) == 4
        assert [m for m in fake_discord.bot_messages() if m.webhook_id is None] == image_messages(
            fake_discord
        )
        (result,) = image_messages(fake_discord)
        assert int(result.message_reference["message_id"]) == record.original_message_id
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        assert (job.state, job.result_message_id) == ("done", result.id)


async def test_a_placeholder_that_landed_but_answered_5xx_is_the_message_the_picture_edits(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    bot_rig.progress_interval = 3600.0
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        bot.service.retry_delays = (0.05, 0.05)
        # The progress post fails; the placeholder is stored and answers 500; the retry with
        # the same nonce gets it back, it is recorded, and the picture is an edit of it.
        rule = fake_discord.fail_next("POST", "/channels/*/messages", times=1, status=503)
        record = await fake_discord.invoke("pokemon", {"prompt": "ヒトカゲ"}, age=14.5 * 60)
        await fake_discord.wait_until(lambda: len(rule.hits) == 1, 30)
        landed = fake_discord.fail_next(
            "POST", "/channels/*/messages", times=1, status=500, process=True
        )
        bot_rig.engine.open_gate()
        await fake_discord.wait_until(lambda: len(landed.hits) == 1, 30)
        await wait_settled(fake_discord, bot_rig)

        (result,) = [m for m in fake_discord.bot_messages() if m.webhook_id is None]
        assert result.attachments
        assert int(result.message_reference["message_id"]) == record.original_message_id
        assert not [r for r in fake_discord.requests_to("POST", "/channels/*/messages") if r.files]
        edits = fake_discord.requests_to("PATCH", f"/channels/*/messages/{result.id}")
        assert [r.status for r in edits if r.files] == [200]
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        assert (job.state, job.progress_message_id, job.result_message_id) == (
            "done",
            result.id,
            result.id,
        )


async def test_5xx_on_the_final_edit_of_a_channel_message_is_retried_by_us_not_posted_twice(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    bot_rig.progress_interval = 3600.0
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        bot.service.retry_delays = (0.05, 0.05)
        # Old token: progress and picture go to a channel message, edited with the bot token
        # (discord.py raises at once on 503 there, and after its own retries on 500).
        await fake_discord.invoke("pokemon", {"prompt": "ヒトカゲ"}, age=14.5 * 60)

        def channel_posts() -> list[FakeMessage]:
            return [m for m in fake_discord.bot_messages() if m.webhook_id is None]

        await fake_discord.wait_until(channel_posts, 30)
        (progress,) = channel_posts()
        rule = fake_discord.fail_next(
            "PATCH", f"/channels/*/messages/{progress.id}", times=2, status=503, process=True
        )
        bot_rig.engine.open_gate()
        await fake_discord.wait_until(lambda: image_messages(fake_discord), 30)
        await wait_settled(fake_discord, bot_rig)

        assert len(rule.hits) == 2
        assert image_messages(fake_discord) == [progress]  # the same message, once
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        assert (job.state, job.result_message_id) == ("done", progress.id)


# -- the gateway -----------------------------------------------------------------------------


async def test_a_burst_of_variations_over_the_channels_post_limit_delivers_each_once(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    # Discord's per-channel post limit, tightened (2 per 2 s, not 5 per 5 s) so that this
    # burst meets it.
    limit = fake.limit_channel_messages(limit=2, window=2.0)
    fans = [fake.add_user(f"fan{n}") for n in range(7)]
    for fan in fans:
        fake.add_member(fake.guild, fan)
    async with bot_rig.run() as bot:
        record = await fake.invoke("pokemon", {"prompt": "ピカチュウ"})
        first = await bot_rig.wait_result(record)
        await fake.wait_until(lambda: first.reaction_users(REGENERATE_EMOJI))
        burst = fake.now()
        for fan in fans:  # seven variations at once: seven channel posts
            await fake.react(fan, first.channel_id, first.id, REGENERATE_EMOJI)

        def variations() -> list[FakeMessage]:
            return [
                m
                for m in image_messages(fake)
                if m.message_reference and int(m.message_reference["message_id"]) == first.id
            ]

        await fake.wait_until(lambda: len(variations()) == len(fans), 60)
        await wait_settled(fake, bot_rig)
        # The limit was in force: discord.py reads the bucket headers and waits (or meets a
        # 429 and retries), so seven posts at two per window span at least three windows ...
        posts = [r for r in fake.requests_to("POST", "/channels/*/messages") if r.at >= burst]
        assert len(posts) >= len(fans)
        assert posts[-1].at - posts[0].at >= 3 * limit.window
        # ... and each variation still came out once, in its own message.
        assert len(variations()) == len(fans)
        assert len(image_messages(fake)) == len(fans) + 1
        for fan in fans:
            (job,) = await bot.store.jobs.recent_for_user(fan.id)
            assert job.state == "done"
            assert job.result_message_id in {m.id for m in variations()}


async def test_gateway_drop_mid_job_resumes_the_session_and_the_job_is_delivered_once(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        record = await start_running(fake_discord, bot_rig, "ピカチュウ")
        await fake_discord.drop_gateway(code=4000)
        await fake_discord.wait_resumed()
        bot_rig.engine.open_gate()
        result = await bot_rig.wait_result(record)
        await wait_settled(fake_discord, bot_rig)
        assert fake_discord.gateway.identify_count == 1  # resumed, not a new login
        assert image_messages(fake_discord) == [result]
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        assert job.state == "done"
        # And the bot still takes commands on the resumed session.
        png_of(await bot_rig.wait_result(await fake_discord.invoke("pokemon", {"prompt": "次"})))


# -- the database ----------------------------------------------------------------------------


class WriteLock:
    """A second real connection holding the database's write lock until `release()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.locked = threading.Event()
        self._release = threading.Event()
        self.thread = threading.Thread(target=self._run, name="lock-holder", daemon=True)

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            self.locked.set()
            self._release.wait(SAFETY_SECONDS)
            conn.execute("COMMIT")
        finally:
            conn.close()

    async def hold(self) -> None:
        self.thread.start()
        assert await asyncio.to_thread(self.locked.wait, SAFETY_SECONDS)

    async def release(self) -> None:
        self._release.set()
        await asyncio.to_thread(self.thread.join, SAFETY_SECONDS)


async def test_busy_database_is_retried_and_the_job_goes_through(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        # No SQLite-level waiting: every busy answer goes to the storage layer's retry loop.
        await bot.store.db.connection.execute("PRAGMA busy_timeout = 0")
        lock = WriteLock(bot.store.path)
        await lock.hold()
        try:
            record = await fake_discord.invoke("pokemon", {"prompt": "まつ"})
            await fake_discord.wait_until(lambda: bot.store.db.busy_retries >= 1, 30)
        finally:
            await lock.release()
        png_of(await bot_rig.wait_result(record))
        await wait_settled(fake_discord, bot_rig)
        assert record.followups == []  # no error was shown
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        assert job.state == "done"


async def fill_the_disk(store: Storage) -> list[int]:
    """Cap the bot's database at its current size and fill the free space left in it, so the
    next row that needs a new page fails with SQLITE_FULL. Returns the filler jobs' ids."""
    conn = store.db.connection
    row = await (await conn.execute("PRAGMA page_count")).fetchone()
    assert row is not None
    await conn.execute(f"PRAGMA max_page_count = {int(row[0])}")
    fillers: list[int] = []
    for n in range(200):
        filler = NewJob(
            user_id=10**6 + n,
            guild_id=None,
            channel_id=1,
            request={
                "prompt": "x" * 2000,
                "negative_prompt": "",
                "seed": 1,
                "steps": 1,
                "guidance": 7.5,
                "width": 64,
                "height": 64,
                "scheduler": "dpmpp-2m",
            },
        )
        try:
            admission = await store.admit(filler)
        except StorageError as exc:
            full = exc.code
            break
        assert admission.job is not None
        fillers.append(admission.job.id)
    else:
        raise AssertionError("the database never filled up")
    assert full == "full"
    return fillers


async def test_full_disk_gives_the_user_an_error_and_the_bot_stays_up(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        fillers = await fill_the_disk(bot.store)
        record = await fake_discord.invoke("pokemon", {"prompt": "あ" * 1000})
        (followup,) = await record.wait_followups(1, within=30)
        assert followup.ephemeral
        assert followup.content == t("error.storage_unavailable", "en")
        assert not bot.is_closed()
        assert await bot.store.jobs.recent_for_user(fake_discord.alice.id) == []

        await bot.store.db.connection.execute("PRAGMA max_page_count = 1073741823")  # space again
        for job_id in fillers:
            await bot.store.jobs.mark_cancelled(job_id)
        png_of(await bot_rig.wait_result(await fake_discord.invoke("pokemon", {"prompt": "次"})))
        await wait_settled(fake_discord, bot_rig)
        assert await bot.store.jobs.pending() == []


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB tmpfs, so that "disk full" is ENOSPC from the kernel, as in production
    (SQLite's `max_page_count` cannot fail an in-place UPDATE). Needs root, as CI has."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill_filesystem(folder: Path) -> Path:
    """Write a file until the filesystem is full; deleting it frees the space again."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass  # ENOSPC: full
    finally:
        os.close(fd)
    return filler


async def test_disk_full_when_a_delivered_job_is_recorded_is_retried_not_drawn_again(
    bot_rig: BotRig, fake_discord: FakeDiscord, small_filesystem: Path
) -> None:
    bot_rig.settings = bot_rig.settings.model_copy(
        update={"pokemon_db": small_filesystem / "bot.sqlite3"}
    )
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        bot.service.record_retry_delay = 0.05
        record = await start_running(fake_discord, bot_rig, "ピカチュウ")
        filler = fill_filesystem(small_filesystem)
        bot_rig.engine.open_gate()
        result = await bot_rig.wait_result(record)  # the picture is posted all the same
        await asyncio.sleep(0.3)  # several background attempts, all refused by the full disk
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        assert job.state in {"queued", "running"}  # (even `running` may not have been written)
        filler.unlink()  # space again: the next background attempt records the outcome
        await fake_discord.wait_until(lambda: not bot.service.delivery.unrecorded, 10)
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        assert (job.state, job.result_message_id) == ("done", result.id)
    async with bot_rig.run() as bot:  # so a restart does not draw and post it a second time
        assert await bot.store.jobs.pending() == []


# -- the bot's place in the guild ------------------------------------------------------------


async def test_bot_removed_from_the_guild_mid_job_ends_the_job_and_keeps_running(
    bot_rig: BotRig, fake_discord: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        await start_running(fake_discord, bot_rig, "ピカチュウ")
        await fake_discord.remove_bot_from_guild(fake_discord.guild)
        await fake_discord.wait_until(lambda: bot.get_guild(fake_discord.guild.id) is None)
        bot_rig.engine.open_gate()
        await wait_settled(fake_discord, bot_rig)
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        # The interaction's webhook still works without membership: the picture is delivered;
        # only the 🔁 reaction (a guild call) fails, which is logged, not fatal.
        assert job.state == "done"
        assert not bot.is_closed()
        assert bot.generator.worker.healthy
        assert any("could not add" in r.getMessage() for r in caplog.records)
    async with bot_rig.run() as bot:  # a restart has nothing to resume: no crash loop
        assert await bot.store.jobs.pending() == []


async def test_losing_attach_files_mid_job_fails_the_job_and_tells_the_user(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        bot.service.retry_delays = ()
        # Old enough that the result goes to the channel, where channel permissions apply.
        await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ"}, age=14.5 * 60)
        await fake_discord.wait_until(lambda: bot.generator.worker.running == 1, 30)
        await fake_discord.deny_channel_permission(fake_discord.channel, Perm.ATTACH_FILES)
        bot_rig.engine.open_gate()
        await wait_settled(fake_discord, bot_rig)

        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        assert (job.state, job.error_code, job.fault) == ("failed", "delivery_failed", "ours")
        assert image_messages(fake_discord) == []
        notices = [
            m
            for m in fake_discord.bot_messages()
            if t("error.gen.delivery_failed", "en") in m.content
        ]
        assert len(notices) == 1
        assert notices[0].pings() == {f"user:{fake_discord.alice.id}"}
        assert not bot.is_closed()
        quota = await bot.store.limits.quota(fake_discord.guild.id, fake_discord.alice.id)
        assert quota.used == 0  # our failure: not counted
