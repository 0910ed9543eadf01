"""`bot.jobs.service.JobService`: the one way in (validated against today's settings), resume after a
restart (in the message the user already has, never drawing a picture that already landed,
never holding up the gateway), and edges of a shutdown racing the start-up.

Real bot, worker thread, SQLite file and the loopback Discord throughout.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import socket
import sqlite3
from typing import NoReturn

import discord.http
import pytest

import bot.messaging as bot_messaging
from bot.client import PokemonBot
from bot.i18n import t
from bot.jobs import new_job
from bot.messaging import REGENERATE_EMOJI
from bot.origins import ReactionOrigin
from bot.validation import validate_pokemon
from generation.errors import GeneratorUnavailableError
from generation.local import ThreadGenerator
from generation.worker import GenerationWorker
from storage import Storage
from tests.bot.conftest import BotRig, notices_for, png_of
from tests.fakediscord import FakeDiscord, FakeMessage


def closed_port_base() -> str:
    """A REST base on a loopback port nobody listens on: every call is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v10"


async def first_result(bot_rig: BotRig, fake: FakeDiscord, **options: object) -> FakeMessage:
    record = await fake.invoke("pokemon", {"prompt": "ピカチュウ", **options}, user=fake.alice)
    result = await bot_rig.wait_result(record)
    await fake.wait_until(lambda: result.reaction_users(REGENERATE_EMOJI))
    return result


# ---- the one way in, against today's settings ---------------------------------------------


async def test_regen_of_a_job_above_the_lowered_max_steps_is_refused_and_its_row_settled(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run():
        first = await first_result(bot_rig, fake_discord, steps=8)
    # The admin lowers POKEMON_MAX_STEPS below what the stored job asks for, and restarts.
    bot_rig.settings = bot_rig.settings.model_copy(update={"pokemon_max_steps": 5})
    async with bot_rig.run() as bot:
        calls = bot_rig.engine.calls
        bob = fake_discord.bob
        await fake_discord.react(bob, first.channel_id, first.id, REGENERATE_EMOJI)
        await fake_discord.wait_until(lambda: notices_for(fake_discord, bob, first.channel_id))
        (notice,) = notices_for(fake_discord, bob, first.channel_id)
        assert t("error.steps_range", "en", min=1, max=5) in notice.content
        # Refused before admission: no row for bob, nothing drawn.
        assert await bot.store.jobs.recent_for_user(bob.id) == []
        assert bot_rig.engine.calls == calls


async def test_resumed_job_above_the_lowered_max_steps_is_refused_in_its_own_message(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        await fake_discord.invoke("pokemon", {"prompt": "さき"}, user=fake_discord.alice)
        await fake_discord.wait_until(lambda: bot.generator.worker.running == 1)
        queued = await fake_discord.invoke(
            "pokemon", {"prompt": "あと", "steps": 8}, user=fake_discord.bob
        )
        await queued.wait_edits(1)  # "Queued: position 1"
        bot.request_shutdown()
        bot_rig.engine.open_gate()
        await bot.wait_shutdown()
        (kept,) = await bot.store.jobs.pending()
    bot_rig.settings = bot_rig.settings.model_copy(update={"pokemon_max_steps": 5})
    calls = bot_rig.engine.calls
    async with bot_rig.run() as bot:
        original = fake_discord.messages[queued.original_message_id]
        expected = t("error.steps_range", "en", min=1, max=5)
        await fake_discord.wait_until(lambda: expected in (original.content or ""), 30)
        row = await bot.store.jobs.get(kept.id)
        assert row is not None
        assert (row.state, row.error_code, row.fault) == ("failed", "steps_range", "rejected")
        assert bot_rig.engine.calls == calls  # never drawn
        assert not original.attachments


# ---- resume: the message the user already has ---------------------------------------------


async def test_restart_continues_queued_slash_job_and_queued_regen_in_their_own_messages(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run():
        first = await first_result(bot_rig, fake)
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        await fake.invoke("pokemon", {"prompt": "いち"}, user=fake.alice)
        await fake.wait_until(lambda: bot.generator.worker.running == 1)
        queued = await fake.invoke("pokemon", {"prompt": "に"}, user=fake.bob)
        await queued.wait_edits(1)
        await fake.react(fake.moderator, first.channel_id, first.id, REGENERATE_EMOJI)

        def placeholders() -> list[FakeMessage]:
            return [
                m
                for m in fake.bot_messages(first.channel_id)
                if m.message_reference
                and int(m.message_reference["message_id"]) == first.id
                and "Queued" in (m.content or "")
            ]

        await fake.wait_until(placeholders)
        (placeholder,) = placeholders()
        bot.request_shutdown()
        bot_rig.engine.open_gate()
        await bot.wait_shutdown()
        assert len(await bot.store.jobs.pending()) == 2

    posted_before = {m.id for m in fake.bot_messages()}
    async with bot_rig.run() as bot:
        original = fake.messages[queued.original_message_id]
        await fake.wait_until(lambda: bool(original.attachments and placeholder.attachments), 60)
        await fake.wait_until(lambda: not bot.service.active, 30)
        assert await bot.store.jobs.pending() == []
        # Each picture is in the message its user already had; nothing new was posted, and
        # no message is left showing a stale queue place or progress.
        assert {m.id for m in fake.bot_messages()} == posted_before
        for message in fake.bot_messages():
            assert "Queued" not in (message.content or "")
            assert "Drawing" not in (message.content or "")
        # The variation still replies to the picture that was reacted to.
        assert placeholder.message_reference is not None
        assert int(placeholder.message_reference["message_id"]) == first.id
        await fake.wait_until(lambda: placeholder.reaction_users(REGENERATE_EMOJI))
        rows = {r.user_id: r for r in await bot.store.jobs.recent_for_user(fake.moderator.id)}
        assert rows[fake.moderator.id].result_message_id == placeholder.id
        assert png_of(placeholder).size == (64, 64)


async def crash_then_restart_reads_it_back(
    bot_rig: BotRig,
    fake: FakeDiscord,
    job_id: int,
    result: FakeMessage,
    assignments: str,
    *params: object,
) -> None:
    """Rewrite job `job_id`'s row as a crash right after its picture landed in `result` leaves
    it (`assignments`: the SET clause, with `params`), restart, and check that the picture is
    read back: the row done with that message, 🔁 added again, nothing drawn or posted."""
    with sqlite3.connect(bot_rig.settings.pokemon_db) as db:
        db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*params, job_id))
    result.reactions.pop(REGENERATE_EMOJI, None)
    calls = bot_rig.engine.calls
    posted_before = {m.id for m in fake.bot_messages()}
    async with bot_rig.run() as bot:
        await fake.wait_until(lambda: result.reaction_users(REGENERATE_EMOJI), 30)
        row = await bot.store.jobs.get(job_id)
        assert row is not None
        assert (row.state, row.result_message_id) == ("done", result.id)
        assert bot_rig.engine.calls == calls
        assert {m.id for m in fake.bot_messages()} == posted_before


async def test_a_running_job_whose_picture_landed_before_the_crash_is_done_not_drawn_again(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        result = await first_result(bot_rig, fake_discord)
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
    # What a crash between Discord storing the upload and the bot hearing back leaves: the
    # row still running, pointing at the message that now carries the picture.
    await crash_then_restart_reads_it_back(
        bot_rig,
        fake_discord,
        job.id,
        result,
        "state = 'running', finished_at = NULL, result_message_id = NULL, progress_message_id = ?",
        result.id,
    )


async def test_a_queued_job_whose_picture_landed_before_the_crash_is_done_not_drawn_again(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        result = await first_result(bot_rig, fake_discord)
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
    # The `running` write is bookkeeping only (a full disk may refuse it), so a row can still
    # say `queued` while its picture is delivered; the `done` write refused too, then a crash.
    await crash_then_restart_reads_it_back(
        bot_rig,
        fake_discord,
        job.id,
        result,
        "state = 'queued', started_at = NULL, finished_at = NULL, result_message_id = NULL, "
        "progress_message_id = ?",
        result.id,
    )


async def stored_job(
    bot_rig: BotRig, fake: FakeDiscord, shown: str, *, state: str = "queued", age: float = 0.0
) -> tuple[int, FakeMessage]:
    """A job the last process left on disk (`state`, created `age` s ago), showing `shown` in
    its own channel message; returns its id and that message."""
    settings = bot_rig.settings
    message = await fake.post_message(fake.bot_user, fake.channel, shown)
    async with await Storage.open(
        settings.pokemon_db,
        default_limit=settings.default_limit,
        max_pending=settings.pokemon_user_max_pending,
    ) as store:
        admission = await store.admit(
            new_job(
                validate_pokemon(settings, "のこり", seed=7),
                user_id=fake.alice.id,
                guild_id=fake.guild.id,
                channel_id=fake.channel.id,
                locale="en",
            )
        )
        assert admission.job is not None
        job_id = admission.job.id
        await store.jobs.set_message(job_id, progress_message_id=message.id)
        if state == "running":
            await store.jobs.mark_running(job_id)
    if age:
        with sqlite3.connect(settings.pokemon_db) as db:
            db.execute("UPDATE jobs SET created_at = created_at - ? WHERE id = ?", (age, job_id))
    return job_id, message


async def test_a_resumed_job_cancelled_while_its_message_is_read_back_is_not_drawn(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    job_id, shown = await stored_job(bot_rig, fake, "Drawing…", state="running")
    # Discord answers the read-back with a 429: discord.py waits 3 s before asking again, and
    # meanwhile alice presses ✖ (the row is on disk only: no generator holds it yet).
    path = f"/channels/{fake.channel.id}/messages/{shown.id}"
    held = fake.fail_next("GET", path, status=429, retry_after=3.0)
    calls = bot_rig.engine.calls
    async with bot_rig.run() as bot:
        await fake.wait_until(lambda: held.hits, 30)
        assert await bot.service.cancel(job_id, fake.alice.id)
        await fake.wait_until(lambda: len(fake.requests_to("GET", path, status=200)) == 1, 30)
        await asyncio.sleep(0.5)
        await fake.wait_until(lambda: not bot.service.active, 30)
        row = await bot.store.jobs.get(job_id)
        assert row is not None
        assert (row.state, row.cancelled_by) == ("cancelled", fake.alice.id)
        assert bot_rig.engine.calls == calls  # never drawn
        assert not shown.attachments
        assert not shown.deleted
        assert t("job.cancelled_by", "en", user=f"<@{fake.alice.id}>") in shown.content


async def test_a_resumed_job_the_generator_cannot_take_waits_on_disk_until_too_old(
    bot_rig: BotRig, fake_discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_discord
    bot_rig.settings = bot_rig.settings.model_copy(update={"pokemon_resume_max_age": 60.0})
    job_id, shown = await stored_job(bot_rig, fake, "Queued: position **1**.", age=54.0)

    async def unavailable(*_: object) -> NoReturn:
        # A remote generator before any worker announced itself (the real one is tested in
        # tests/bot/test_remote_run.py): every submit is refused at once.
        raise GeneratorUnavailableError("no generation worker is online")

    monkeypatch.setattr(ThreadGenerator, "submit", unavailable)
    calls = bot_rig.engine.calls
    async with bot_rig.run() as bot:
        await asyncio.sleep(2.0)
        # Kept on disk, offered again with back-off; nobody is told it failed.
        row = await bot.store.jobs.get(job_id)
        assert row is not None
        assert (row.state, row.error_code) == ("queued", None)
        assert shown.content == "Queued: position **1**."
        # Once older than POKEMON_RESUME_MAX_AGE it is refused as any job too old to resume.
        expected = t("pokemon.resume_expired", "en")
        await fake.wait_until(lambda: expected in shown.content, 30)
        row = await bot.store.jobs.get(job_id)
        assert row is not None
        assert (row.state, row.error_code, row.fault) == ("failed", "expired", "ours")
        assert bot_rig.engine.calls == calls


async def test_a_late_picture_posted_in_the_channel_is_read_back_after_a_crash_not_drawn_again(
    bot_rig: BotRig, fake_discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot_rig.progress_interval = 60.0  # after "Queued", no progress edit before the picture
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        record = await fake_discord.invoke("pokemon", {"prompt": "ヒトカゲ"})
        await record.wait_edits(1)  # "Queued", in the original response
        await fake_discord.wait_until(lambda: bot.generator.worker.running == 1)
        # The token runs out while the job draws: the picture is the first thing this job
        # sends to the channel, as a new message (a reply to the original response).
        monkeypatch.setattr(bot_messaging, "TOKEN_MARGIN", dt.timedelta(minutes=15))
        bot_rig.engine.open_gate()

        def pictures() -> list[FakeMessage]:
            return [m for m in fake_discord.bot_messages() if m.attachments]

        await fake_discord.wait_until(lambda: pictures() != [], 30)
        (result,) = pictures()
        assert result.id != record.original_message_id
        assert result.message_reference is not None
        assert int(result.message_reference["message_id"]) == record.original_message_id
        await fake_discord.wait_until(lambda: result.reaction_users(REGENERATE_EMOJI))
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
    monkeypatch.undo()
    # What a crash between Discord storing that message and the bot hearing back leaves: the
    # row still running, with whatever message id it had recorded before the picture went out.
    await crash_then_restart_reads_it_back(
        bot_rig,
        fake_discord,
        job.id,
        result,
        "state = 'running', finished_at = NULL, result_message_id = NULL",
    )


async def test_a_picture_whose_message_was_deleted_meanwhile_is_read_back_after_a_crash(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    # After "Queued", no progress edit before the picture (cosmetic edits in one channel are
    # paced at 0.6 × this: the variation's "Queued" waits up to 12 s behind the first job's).
    bot_rig.progress_interval = 20.0
    async with bot_rig.run() as bot:
        first = await first_result(bot_rig, fake)
        bot_rig.engine.close_gate()
        await fake.react(fake.bob, first.channel_id, first.id, REGENERATE_EMOJI)

        def replies() -> list[FakeMessage]:
            return [
                m
                for m in fake.bot_messages()
                if m.message_reference and int(m.message_reference["message_id"]) == first.id
            ]

        await fake.wait_until(lambda: replies() != [], 30)
        (shown,) = replies()  # the variation's "Queued"
        await fake.wait_until(lambda: bot.generator.worker.running == 1)
        await fake.delete_message(shown)  # a moderator tidies the channel
        bot_rig.engine.open_gate()
        await fake.wait_until(lambda: any(m.attachments for m in replies()), 30)
        (result,) = replies()
        assert result.id != shown.id
        await fake.wait_until(lambda: result.reaction_users(REGENERATE_EMOJI))
        (job,) = await bot.store.jobs.recent_for_user(fake.bob.id)
        # The new message was recorded before the picture went into it.
        assert job.progress_message_id == result.id
    await crash_then_restart_reads_it_back(
        bot_rig,
        fake,
        job.id,
        result,
        "state = 'running', finished_at = NULL, result_message_id = NULL",
    )


async def test_resuming_a_full_queue_makes_no_discord_call_before_the_gateway_connects(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    settings = bot_rig.settings.model_copy(
        update={"pokemon_queue_size": 32, "pokemon_user_max_pending": 30, "pokemon_rate_limit": 50}
    )
    bot_rig.settings = settings
    bot_rig.progress_interval = 2.0  # production pacing
    # 21 jobs queued by the last process, each showing "Queued" in its own channel message.
    async with await Storage.open(
        settings.pokemon_db,
        default_limit=settings.default_limit,
        max_pending=settings.pokemon_user_max_pending,
    ) as store:
        for n in range(21):
            shown = await fake.post_message(
                fake.bot_user, fake.channel, f"Queued: position **{n + 1}**."
            )
            admission = await store.admit(
                new_job(
                    validate_pokemon(settings, f"ピカチュウ {n}", seed=n),
                    user_id=fake.alice.id,
                    guild_id=fake.guild.id,
                    channel_id=fake.channel.id,
                    locale="en",
                )
            )
            assert admission.job is not None
            await store.jobs.set_message(admission.job.id, progress_message_id=shown.id)
    started = fake.now()
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        (identified,) = fake.gateway.identified_at
        message_calls = [
            r for r in fake.requests_to("*", "/channels/*") if started <= r.at <= identified
        ]
        assert message_calls == []  # resume touched no message before IDENTIFY
        # Once it has, each message is read back (none carries a picture) and every job is
        # queued again.
        await fake.wait_until(lambda: len(bot.service.active) == 21, 30)

        # Afterwards each message is updated in the background, paced per channel.
        def queue_edits() -> list[float]:
            return sorted(
                r.at
                for r in fake.requests_to("PATCH", "/channels/*/messages/*")
                if isinstance(r.json, dict) and "Queued" in str(r.json.get("content"))
            )

        await fake.wait_until(lambda: len(queue_edits()) >= 4, 30)
        edits = queue_edits()
        assert all(later - earlier >= 1.0 for earlier, later in itertools.pairwise(edits))
        bot_rig.engine.open_gate()


# ---- a shutdown racing the start-up; a queue place that cannot be shown ---------------------


async def test_shutdown_requested_while_starting_leaves_resumable_jobs_queued_on_disk(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    settings = bot_rig.settings
    request = validate_pokemon(settings, "のこる", seed=1)
    store = await Storage.open(
        settings.pokemon_db,
        default_limit=settings.default_limit,
        owner_ids=settings.pokemon_owner_ids,
        max_pending=settings.pokemon_user_max_pending,
    )
    generator = ThreadGenerator(GenerationWorker(bot_rig.engine, queue_size=8))
    await generator.start()
    try:
        admission = await store.admit(
            new_job(
                request,
                user_id=fake_discord.alice.id,
                guild_id=fake_discord.guild.id,
                channel_id=fake_discord.channel.id,
                locale="en",
            )
        )
        assert admission.job is not None
        bot = PokemonBot(settings=settings, store=store, generator=generator)
        # SIGTERM before the login finished: the shutdown stops the generator, then the
        # login's setup hook goes on to resume the jobs left on disk.
        bot.request_shutdown()
        await bot.wait_shutdown()
        with fake_discord.redirect():
            await asyncio.wait_for(bot.start(fake_discord.token), 15)
        await bot.http.close()  # the login opened a session that the earlier close() never saw
        job = await store.jobs.get(admission.job.id)
        assert job is not None
        assert (job.state, job.error_code) == ("queued", None)
        assert fake_discord.bot_messages() == []  # nobody was told their job failed
    finally:
        await generator.stop(timeout=10)
        await store.close()


async def test_queue_place_message_that_cannot_reach_discord_does_not_fail_the_job(
    bot_rig: BotRig, fake_discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with bot_rig.run() as bot:
        first = await first_result(bot_rig, fake_discord)
        (parent,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        bot_rig.engine.close_gate()
        await fake_discord.invoke("pokemon", {"prompt": "さき"}, user=fake_discord.moderator)
        await fake_discord.wait_until(lambda: bot.generator.worker.running == 1, 30)
        origin = ReactionOrigin(
            user_id=fake_discord.bob.id,
            guild_id=fake_discord.guild.id,
            channel_id=first.channel_id,
            message_id=first.id,
            parent=parent,
            locale="en",
        )
        with monkeypatch.context() as patch:
            # Discord unreachable for a moment: the queue-place post gets a refused connection,
            # which discord.py raises as it is (an OSError), not as an HTTPException.
            patch.setattr(discord.http.Route, "BASE", closed_port_base())
            job = await bot.service.regenerate(origin)
            await asyncio.sleep(0.2)
        assert job is not None
        bot_rig.engine.open_gate()
        await fake_discord.wait_until(lambda: not bot.service.active, 30)
        row = await bot.store.jobs.get(job.id)
        assert row is not None
        assert row.state == "done"
        (posted,) = [
            m
            for m in fake_discord.bot_messages(fake_discord.channel.id)
            if m.id == row.result_message_id
        ]
        assert png_of(posted).size == (64, 64)


def test_a_result_that_reports_no_text_used_shows_no_translation_and_no_warning() -> None:
    from bot.jobs.results import translation_shown, untranslated
    from generation.types import GenerationRequest

    request = GenerationRequest(prompt="a fire dragon", negative_prompt="blurry", translate=True)
    # A generator that does not report what it used: nothing to show (an empty embed field
    # is refused by Discord), and no claim that English went through untranslated.
    assert translation_shown(request, "", "") is None
    assert not untranslated(request, "", "")
    # One that did translate is shown; one that passed the English through is flagged.
    assert translation_shown(request, "炎の竜", "ぼやけた") == ("炎の竜", "ぼやけた")
    assert untranslated(request, "a fire dragon", "blurry")


def test_a_refunded_job_leaves_the_quota_as_storage_would_count_it() -> None:
    from datetime import UTC, datetime

    from bot.jobs.results import without_job
    from storage import Quota

    at = datetime(2030, 1, 1, tzinfo=UTC)
    # Within the limit: the refunded pictures are free again.
    quota = Quota(limit=10, period="day", used=4, remaining=6, reset_at=at, source="global")
    assert (without_job(quota, 2).used, without_job(quota, 2).remaining) == (2, 8)
    assert without_job(quota, 2).reset_at == at  # the oldest counted job is still there
    # Over a lowered limit: still nothing left, as storage would say.
    over = Quota(limit=2, period="day", used=5, remaining=0, reset_at=at, source="user")
    assert (without_job(over, 1).used, without_job(over, 1).remaining) == (4, 0)
    # The only job refunded: nothing used, nothing to wait for.
    only = Quota(limit=2, period="day", used=1, remaining=1, reset_at=at, source="global")
    assert (without_job(only, 1).used, without_job(only, 1).reset_at) == (0, None)
    # Unlimited stays unlimited.
    free = Quota(limit=None, period="day", used=3, remaining=None, reset_at=None, source="owner")
    assert without_job(free, 1).remaining is None
