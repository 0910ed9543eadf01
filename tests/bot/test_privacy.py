"""A user's data on request: `/privacy` with its delete button, and `pokemon-bot forget-user`.

After either, the user's jobs, limits and usage are gone, other users' are untouched, and a
job of that user still queued is cancelled, never delivered. Real bot, worker thread, SQLite
file and loopback Discord; the CLI runs as a real subprocess against the bot's database.
"""

from __future__ import annotations

import asyncio
import re
import sys

from bot.custom_ids import forget_id
from bot.i18n import t
from storage import Storage
from tests.bot.conftest import BotRig
from tests.fakediscord import FakeDiscord, InteractionRecord


async def make_picture(bot_rig: BotRig, fake: FakeDiscord, user: object, prompt: str) -> None:
    record = await fake.invoke("pokemon", {"prompt": prompt}, user=user)
    await bot_rig.wait_result(record)


def job_id_in(record: InteractionRecord) -> int:
    """The job a command's response belongs to (from its ✖ button's custom_id)."""
    message = record.original_message
    assert message is not None
    for row in message.components:
        for component in row.get("components", []):
            found = re.fullmatch(r"pkmn:cancel:([0-9]+)", component.get("custom_id", ""))
            if found:
                return int(found[1])
    raise AssertionError("no ✖ under the response")


async def set_limits(store: Storage, fake: FakeDiscord) -> None:
    for user in (fake.alice, fake.bob):
        await store.limits.set_user(fake.guild.id, user.id, 7, "day", actor_id=fake.owner.id)


async def test_privacy_shows_what_is_stored_and_its_button_deletes_only_that_users_data(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        await make_picture(bot_rig, fake, fake.alice, "アリス")
        await make_picture(bot_rig, fake, fake.bob, "ボブ")
        await set_limits(bot.store, fake)
        bot_rig.engine.close_gate()
        await fake.invoke("pokemon", {"prompt": "はしる"}, user=fake.moderator)
        await fake.wait_until(lambda: bot.generator.worker.running == 1)
        queued = await fake.invoke("pokemon", {"prompt": "まつ"}, user=fake.alice)
        await queued.wait_edits(1)  # alice's job waits in the queue
        calls = bot_rig.engine.calls

        asked = await fake.invoke("privacy", {}, user=fake.alice)
        await fake.wait_until(lambda: asked.original_message is not None)
        answer = asked.original_message
        assert answer is not None
        assert answer.ephemeral
        assert "What this bot stores about you" in answer.content
        assert t("count.days", "en", count=30) in answer.content  # the retention period

        assert answer.component(forget_id(fake.alice.id)) is not None
        pressed = await fake.press(answer, forget_id(fake.alice.id), user=fake.alice)
        # Acknowledged without a visible change, then the message itself says what was
        # deleted, and its button is gone.
        await fake.wait_until(lambda: answer.components == [], 30)
        assert pressed.callbacks[0].type == 6
        assert answer.ephemeral
        assert t("count.queued_pictures", "en", count=1) in answer.content
        assert "What this bot stores about you" not in answer.content

        bot_rig.engine.open_gate()
        await fake.wait_until(lambda: not bot.service.active, 30)
        # Alice's queued job was cancelled before it ran: one engine call (the moderator's).
        assert bot_rig.engine.calls == calls
        assert queued.original_message is None or not queued.original_message.attachments
        assert await bot.store.jobs.recent_for_user(fake.alice.id) == []
        assert await bot.store.usage.user_images(fake.guild.id, fake.alice.id) == 0
        limits = {u.user_id for u in await bot.store.limits.list_user_limits(fake.guild.id)}
        assert limits == {fake.bob.id}
        (bobs,) = await bot.store.jobs.recent_for_user(fake.bob.id)
        assert bobs.state == "done"


async def test_only_the_user_who_asked_can_press_their_delete_button(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        await make_picture(bot_rig, fake, fake.alice, "アリス")
        asked = await fake.invoke("privacy", {}, user=fake.alice)
        await fake.wait_until(lambda: asked.original_message is not None)
        answer = asked.original_message
        assert answer is not None
        # Discord shows an ephemeral message to its user only; the bot checks again anyway.
        pressed = await fake.press(answer, forget_id(fake.alice.id), user=fake.bob, strict=False)
        (refusal,) = await pressed.wait_followups(1)
        assert refusal.ephemeral
        assert refusal.content == t("error.not_allowed", "en")
        assert len(await bot.store.jobs.recent_for_user(fake.alice.id)) == 1  # kept
        assert answer.component(forget_id(fake.alice.id)) is not None  # still hers to press


async def test_forget_user_cli_cancels_the_users_jobs_so_the_running_bot_never_posts_them(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        await make_picture(bot_rig, fake, fake.alice, "アリス")
        await make_picture(bot_rig, fake, fake.bob, "ボブ")
        await set_limits(bot.store, fake)
        assert await bot.store.usage.user_images(fake.guild.id, fake.alice.id) == 1
        bot_rig.engine.close_gate()
        # Alice's job is drawing; the moderator's waits behind it, and alice's second behind
        # that one (the fair queue serves the moderator first).
        running = await fake.invoke("pokemon", {"prompt": "はしる"}, user=fake.alice)
        await fake.wait_until(lambda: bot.generator.worker.running == 1)
        others = await fake.invoke("pokemon", {"prompt": "ほか"}, user=fake.moderator)
        await others.wait_edits(1)  # "Queued: position 1"
        queued = await fake.invoke("pokemon", {"prompt": "まつ"}, user=fake.alice)
        await queued.wait_edits(1)  # "Queued: position 2"
        calls = bot_rig.engine.calls

        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "forget-user",
            str(fake.alice.id),
            "--db",
            str(bot_rig.settings.pokemon_db),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        assert "2 queued jobs cancelled" in out.decode()

        # The running bot takes alice's queued job out of its queue (it watches the database).
        queued_id = job_id_in(queued)
        await fake.wait_until(lambda: queued_id not in bot.service.active, 30)
        # Alice's running picture is drawn, but not posted; the moderator's is drawn and posted;
        # alice's queued one is never drawn.
        bot_rig.engine.open_gate()
        await bot_rig.wait_result(others)
        await fake.wait_until(lambda: not bot.service.active, 30)
        assert bot_rig.engine.calls == calls + 1  # the moderator's only
        for record in (running, queued):
            assert record.original_message is None or not record.original_message.attachments
        assert await bot.store.jobs.recent_for_user(fake.alice.id) == []
        assert await bot.store.usage.user_images(fake.guild.id, fake.alice.id) == 0
        limits = {u.user_id for u in await bot.store.limits.list_user_limits(fake.guild.id)}
        assert limits == {fake.bob.id}
        (bobs,) = await bot.store.jobs.recent_for_user(fake.bob.id)
        assert bobs.state == "done"
        (mods,) = await bot.store.jobs.recent_for_user(fake.moderator.id)
        assert mods.state == "done"


async def test_forget_user_cli_refuses_a_user_id_that_is_not_a_number(tmp_path: object) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "forget-user",
        "alice",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert err.decode().strip().count("\n") == 0
    assert "not a Discord user id" in err.decode()
