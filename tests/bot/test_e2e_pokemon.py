"""`/pokemon` end to end: the real bot, over real sockets, against the fake Discord, with the
real worker on the tiny checkpoint and a real SQLite file."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.client import EXIT_WORKER_FATAL
from bot.i18n import t
from bot.messaging import REGENERATE_EMOJI
from generation.errors import FatalDeviceError
from storage import NewJob, Storage
from tests.bot.conftest import BotRig, png_of
from tests.fakediscord import FakeDiscord


async def test_commands_sync_once_and_not_again_on_restart_with_same_commands(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run():
        assert fake_discord.sync_count() == 1
    registered = {c["name"]: c for c in fake_discord.registered_commands()}
    assert registered["pokemon"]["name_localizations"] == {"ja": "ポケモン"}
    assert registered["pokemon"]["description_localizations"]["ja"]
    assert bot_rig.settings.pokemon_db.with_name("bot.sqlite3.commands-hash").exists()
    async with bot_rig.run():
        pass
    assert fake_discord.sync_count() == 1  # same commands: no second sync


async def test_dev_guild_gets_commands_instantly_and_global_is_left_alone(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    bot_rig.settings = bot_rig.settings.model_copy(
        update={"pokemon_dev_guild": fake_discord.guild.id}
    )
    async with bot_rig.run():
        pass
    assert fake_discord.sync_count(fake_discord.guild) == 1
    assert fake_discord.sync_count() == 0
    assert "pokemon" in {c["name"] for c in fake_discord.registered_commands(fake_discord.guild)}


async def test_pokemon_defers_in_time_shows_progress_and_delivers_a_png_with_regen_reaction(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        record = await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ", "seed": 42})
        await record.wait_response()
        assert record.deferred
        assert not record.ephemeral
        result = await bot_rig.wait_result(record)
        await fake_discord.wait_until(lambda: result.reaction_users(REGENERATE_EMOJI))

        assert record.rejected == []  # nothing late (3 s deadline), expired or malformed
        image = png_of(result)
        assert image.format == "PNG"
        assert image.size == (64, 64)
        progress = [e.content for e in record.edits if "3" in e.content and "/" in e.content]
        assert any("/3" in text for text in progress), [e.content for e in record.edits]
        assert result.content == ""  # the progress text is gone from the final message
        assert result.reactions == {REGENERATE_EMOJI: [fake_discord.bot_user.id]}
        embed = result.embeds[0]
        assert embed["description"] == "ピカチュウ"
        fields = {f["name"]: f["value"] for f in embed["fields"]}
        assert fields[t("pokemon.field_seed", "en")] == "42"
        assert fields[t("pokemon.field_steps", "en")] == "3"
        assert "19 of 20" in fields[t("pokemon.field_quota", "en")]
        assert "<t:" in fields[t("pokemon.field_quota", "en")]

        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        assert job.state == "done"
        assert job.result_message_id == result.id
        assert job.request["seed"] == 42
        assert job.request["steps"] == 3
        assert job.request["prompt"] == "ピカチュウ"


async def test_japanese_locale_gets_japanese_text(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run():
        record = await fake_discord.invoke("pokemon", {"prompt": "ゼニガメ"}, locale="ja")
        result = await bot_rig.wait_result(record)
    names = [f["name"] for f in result.embeds[0]["fields"]]
    assert t("pokemon.field_seed", "ja") in names


async def test_everyone_in_a_prompt_pings_nobody_and_is_escaped(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    prompt = "@everyone @here <@&123456789> **ピカチュウ**"
    async with bot_rig.run():
        record = await fake_discord.invoke("pokemon", {"prompt": prompt})
        result = await bot_rig.wait_result(record)
    assert result.pings() == set()
    assert (result.allowed_mentions or {}).get("parse", []) == []
    description = result.embeds[0]["description"]
    assert "@everyone" not in description
    assert "@here" not in description
    assert "@\u200beveryone" in description
    assert "\\*\\*" in description  # markdown shown as typed, not rendered
    for message in fake_discord.bot_messages():
        assert message.pings() == set()


async def test_invisible_only_prompt_is_refused_ephemerally_before_any_job(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        record = await fake_discord.invoke("pokemon", {"prompt": "\u200b\u200d\u2066"})
        callback = await record.wait_response()
        assert callback.type == 4
        assert callback.ephemeral
        assert callback.data is not None
        assert callback.data["content"] == t("error.prompt_empty", "en")
        assert await bot.store.jobs.recent_for_user(fake_discord.alice.id) == []


async def test_full_queue_is_refused_ephemerally_and_not_counted(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    bot_rig.settings = bot_rig.settings.model_copy(update={"pokemon_queue_size": 1})
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        running = await fake_discord.invoke("pokemon", {"prompt": "いち"}, user=fake_discord.alice)
        await fake_discord.wait_until(lambda: bot.generator.worker.running == 1)
        queued = await fake_discord.invoke("pokemon", {"prompt": "に"}, user=fake_discord.bob)
        await fake_discord.wait_until(lambda: bot.generator.worker.queued == 1)
        refused = await fake_discord.invoke(
            "pokemon", {"prompt": "さん"}, user=fake_discord.moderator
        )
        (followup,) = await refused.wait_followups(1)
        assert followup.ephemeral
        assert followup.content == t("error.queue_full", "en", size=1)
        assert (
            refused.original_message_id in refused.deleted_ids or refused.original_message is None
        )
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.moderator.id)
        assert (job.state, job.error_code, job.fault) == ("failed", "queue_full", "rejected")
        quota = await bot.store.limits.quota(fake_discord.guild.id, fake_discord.moderator.id)
        assert quota.used == 0

        bot_rig.engine.open_gate()
        await bot_rig.wait_result(running)
        await bot_rig.wait_result(queued)


async def test_result_goes_to_the_channel_when_the_token_is_nearly_expired(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        # Back-dated 14.5 minutes: deferring still works, but 30 s are left for the result.
        record = await fake_discord.invoke("pokemon", {"prompt": "ヒトカゲ"}, age=14.5 * 60)
        await record.wait_response()

        def channel_result() -> bool:
            return any(m.attachments and m.message_reference for m in fake_discord.bot_messages())

        await fake_discord.wait_until(channel_result, 30)
        (result,) = [m for m in fake_discord.bot_messages() if m.attachments]
        assert result.webhook_id is None  # posted with the bot token, not the interaction's
        assert result.message_reference is not None
        assert int(result.message_reference["message_id"]) == record.original_message_id
        # The original response says where the picture went instead of "thinking…" forever.
        original = record.original_message
        assert original is not None
        assert not original.loading
        assert original.content == t("pokemon.handoff", "en")
        assert record.rejected == []
        await fake_discord.wait_until(lambda: result.reaction_users(REGENERATE_EMOJI))
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        assert job.result_message_id == result.id


async def test_shutdown_finishes_the_running_job_keeps_the_queued_one_and_resumes_it(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        running = await fake_discord.invoke("pokemon", {"prompt": "いち"}, user=fake_discord.alice)
        await fake_discord.wait_until(lambda: bot.generator.worker.running == 1)
        queued = await fake_discord.invoke("pokemon", {"prompt": "に"}, user=fake_discord.bob)
        await queued.wait_edits(1)  # its place in the queue is shown
        bot.request_shutdown()  # what SIGTERM does
        await fake_discord.wait_until(lambda: not bot.service.accepting)
        bot_rig.engine.open_gate()
        await bot.wait_shutdown()
        assert bot.is_closed()
        assert bot.exit_code == 0
        finished = running.original_message
        assert finished is not None
        assert finished.attachments
        (kept,) = await bot.store.jobs.pending()
        assert kept.user_id == fake_discord.bob.id
        assert kept.state == "queued"
        assert kept.progress_message_id == queued.original_message_id

    posted_before = len(fake_discord.bot_messages())
    async with bot_rig.run() as bot:
        # The picture lands in the message the user already had (edited through the channel
        # endpoint), which no longer shows a stale queue place; nothing new is posted.
        original = fake_discord.messages[queued.original_message_id]

        await fake_discord.wait_until(lambda: bool(original.attachments), 30)
        await fake_discord.wait_until(lambda: original.reaction_users(REGENERATE_EMOJI))
        assert "Queued" not in (original.content or "")
        assert len(fake_discord.bot_messages()) == posted_before
        job = await bot.store.jobs.get(kept.id)
        assert job is not None
        assert job.state == "done"
        assert job.result_message_id == original.id


async def test_jobs_too_old_to_resume_are_failed_with_a_message_to_the_user(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    asked = await fake_discord.post_message(fake_discord.alice, fake_discord.channel, "...")
    long_ago = datetime.now(UTC) - timedelta(hours=7)
    async with await Storage.open(bot_rig.settings.pokemon_db, clock=lambda: long_ago) as store:
        admission = await store.admit(
            NewJob(
                user_id=fake_discord.alice.id,
                guild_id=fake_discord.guild.id,
                channel_id=fake_discord.channel.id,
                request={"prompt": "ふるい", "seed": 1, "steps": 3, "width": 64, "height": 64},
                reply_to_message_id=asked.id,
            )
        )
        assert admission.job is not None
    async with bot_rig.run() as bot:
        job = await bot.store.jobs.get(admission.job.id)
        assert job is not None
        assert (job.state, job.error_code, job.fault) == ("failed", "expired", "ours")
        (notice,) = fake_discord.bot_messages()
        assert notice.content == f"<@{fake_discord.alice.id}> " + t("pokemon.resume_expired", "en")
        assert notice.message_reference is not None
        assert int(notice.message_reference["message_id"]) == asked.id
        assert notice.pings() == {f"user:{fake_discord.alice.id}"}


async def test_unexpected_error_shows_an_error_id_and_logs_it_with_the_traceback(
    bot_rig: BotRig, fake_discord: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    async with bot_rig.run() as bot:

        async def broken_admit(*_args: object, **_kwargs: object) -> None:
            raise RuntimeError("a bug nobody expected")

        bot.store.admit = broken_admit  # type: ignore[method-assign]
        record = await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ"})
        (followup,) = await record.wait_followups(1)
    assert followup.ephemeral
    match = re.fullmatch(t("error.unexpected", "en", error_id="([0-9a-f]{8})"), followup.content)
    assert match is not None, followup.content
    (logged,) = [r for r in caplog.records if match.group(1) in r.getMessage()]
    assert logged.levelname == "ERROR"
    assert logged.exc_info is not None
    assert "Traceback" not in followup.content


async def test_rate_limited_user_is_told_which_limit_and_when_ephemerally(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        alice = fake_discord.alice
        await bot.store.limits.set_user(
            fake_discord.guild.id, alice.id, 1, "hour", actor_id=fake_discord.owner.id
        )
        await bot_rig.wait_result(await fake_discord.invoke("pokemon", {"prompt": "いち"}))
        refused = await fake_discord.invoke("pokemon", {"prompt": "に"})
        (followup,) = await refused.wait_followups(1)
        assert followup.ephemeral
        assert re.search(r"limit of 1 picture per hour\. .* <t:\d+:R>", followup.content)
        assert refused.original_message_id in refused.deleted_ids
        assert len(await bot.store.jobs.recent_for_user(alice.id)) == 1  # no row for a refusal


async def test_fatal_device_error_shuts_the_bot_down_with_a_non_zero_exit(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    bot_rig.engine.fail_with = FatalDeviceError("CUDA error: an illegal memory access")
    async with bot_rig.run() as bot:
        record = await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ"})
        await bot.wait_until_ready()
        await fake_discord.wait_until(bot.is_closed, 30)
        await bot.wait_shutdown()
        assert bot.exit_code == EXIT_WORKER_FATAL
        assert not bot.generator.worker.healthy
        (followup,) = record.followups
        assert followup.ephemeral
        assert followup.content == t("error.gen.device_failed", "en")
