"""Every press answered (issue 18): each kind of button pressed twice within a second, buttons
of an older format and malformed ones, and presses after a restart, the `/privacy` button
included. For each press the fake saw exactly one accepted interaction callback (it refuses a
callback after Discord's 3 s with 10062 and a second one with 40060: neither happened) and the
presser got an answer that says what happened. Real bot, worker, SQLite and loopback Discord.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.custom_ids import custom_id, forget_id
from bot.i18n import t
from tests.bot.conftest import BotRig
from tests.bot.test_e2e_buttons import drawn, first_result, job_id_of, private_answer
from tests.fakediscord import FakeDiscord, FakeMessage, InteractionRecord

CHANNEL_TYPE = 3


async def press_twice(
    fake: FakeDiscord, message: FakeMessage, custom_id: str, user: Any
) -> tuple[InteractionRecord, InteractionRecord]:
    """Two presses sent together, as a double click: the second is on its way before the bot
    has handled the first."""
    one, two = await asyncio.gather(
        fake.press(message, custom_id, user=user), fake.press(message, custom_id, user=user)
    )
    return one, two


async def answered_once(*records: InteractionRecord) -> None:
    """Each press got one callback, in time (a late or second one would be in `rejected`)."""
    for record in records:
        await record.wait_response()
        assert len(record.callbacks) == 1, record.callbacks
        assert record.rejected == [], record.rejected


def posted_by_an_older_version(message: FakeMessage, *custom_ids: str) -> None:
    """Give `message` the buttons an older (or broken) version of the bot put there."""
    message.components = [
        {
            "type": 1,
            "components": [
                {"type": 2, "style": 2, "label": f"old {n}", "custom_id": cid}
                for n, cid in enumerate(custom_ids)
            ],
        }
    ]


async def privacy_answer(fake: FakeDiscord, user: Any) -> FakeMessage:
    asked = await fake.invoke("privacy", {}, user=user)
    await asked.wait_response()
    answer = asked.original_message
    assert answer is not None
    assert answer.ephemeral
    return answer


async def test_each_kind_of_button_pressed_twice_at_once_is_answered_each_time(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        first = await first_result(bot_rig, fake)
        job = job_id_of(first)

        # ℹ️ twice: the details, privately, each time.
        presses = await press_twice(fake, first, custom_id("info", job), fake.bob)
        await answered_once(*presses)
        for record in presses:
            assert "```\n/pokemon prompt:ピカチュウ" in await private_answer(record)

        # 🗑️ twice: one deletes the picture, the other is told it is already gone.
        presses = await press_twice(fake, first, custom_id("delete", job), fake.alice)
        await answered_once(*presses)
        await fake.wait_until(lambda: first.deleted and any(r.followups for r in presses))
        texts = [f.content for r in presses for f in r.followups]
        assert texts == [t("button.already_deleted", "en")]

        # ✖ twice on a job that waits: it is cancelled, and its message says by whom.
        bot_rig.engine.close_gate()
        waiting = await fake.invoke("pokemon", {"prompt": "まつ"}, user=fake.alice)
        await fake.wait_until(
            lambda: (
                waiting.original_message is not None and bool(waiting.original_message.components)
            )
        )
        message = waiting.original_message
        assert message is not None
        presses = await press_twice(
            fake, message, custom_id("cancel", job_id_of(message)), fake.alice
        )
        bot_rig.engine.open_gate()
        await answered_once(*presses)
        cancelled = t("job.cancelled_by", "en", user=f"<@{fake.alice.id}>")
        await fake.wait_until(lambda: message.content == cancelled, 30)
        assert message.components == []

        # "Delete my data" twice (a stale copy): deleted once, the button taken off the
        # message, and the second press told that nothing is stored any more.
        answer = await privacy_answer(fake, fake.alice)
        presses = await press_twice(fake, answer, forget_id(fake.alice.id), fake.alice)
        await answered_once(*presses)
        await fake.wait_until(lambda: any(r.followups for r in presses), 30)
        assert answer.components == []
        assert t("count.queued_pictures", "en", count=0) in answer.content
        texts = [f.content for r in presses for f in r.followups]
        assert texts == [t("privacy.nothing_stored", "en")]
        assert await bot.store.jobs.recent_for_user(fake.alice.id) == []


@pytest.mark.parametrize("button", ["regen", "vary:subtle", "vary:strong"])
async def test_new_variation_and_vary_pressed_twice_at_once_draw_once_and_say_so(
    bot_rig: BotRig, fake_discord: FakeDiscord, button: str
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        first = await first_result(bot_rig, fake)
        action, _, arg = button.partition(":")
        pressed = custom_id(action, job_id_of(first), arg or None)
        bot_rig.engine.close_gate()
        presses = await press_twice(fake, first, pressed, fake.bob)
        await answered_once(*presses)
        await fake.wait_until(lambda: any(r.followups for r in presses), 30)
        texts = [f.content for r in presses for f in r.followups]
        assert texts == [t("regen.already_pending", "en")]
        bot_rig.engine.open_gate()
        await fake.wait_until(lambda: drawn(fake, first), 30)
        assert len(await bot.store.jobs.recent_for_user(fake.bob.id)) == 1


async def test_a_button_of_an_older_format_works_and_unknown_ones_are_told_they_expired(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        first = await first_result(bot_rig, fake)
        job = job_id_of(first)
        old, malformed, weird, unknown = (
            f"pokemon:vary:strong:{job}",
            "pkmn:regen:abc",
            f"pkmn:vary:{job}:weird",
            f"pkmn:upscale:{job}",
        )
        posted_by_an_older_version(first, old, malformed, weird, unknown, "not-ours")
        for pressed in (malformed, weird, unknown, "not-ours"):
            record = await fake.press(first, pressed, user=fake.bob, locale="ja")
            await answered_once(record)
            assert record.callback_type == 4  # answered at once, privately
            assert record.ephemeral
            assert record.original_message is not None
            assert record.original_message.content == t("button.expired", "ja")
        # The first 🎨 buttons' format still draws: a strong variation of that picture.
        record = await fake.press(first, old, user=fake.bob)
        await answered_once(record)
        await fake.wait_until(lambda: drawn(fake, first), 30)
        (child,) = await bot.store.jobs.recent_for_user(fake.bob.id)
        assert child.parent_job_id == job
        assert child.request["strength"] == 0.65


async def test_buttons_and_the_privacy_button_pressed_after_a_restart_are_answered(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run():
        first = await first_result(bot_rig, fake)
        await bot_rig.wait_result(await fake.invoke("pokemon", {"prompt": "ボブ"}, user=fake.bob))
        alices = await privacy_answer(fake, fake.alice)
        # bob's /privacy answered by a version whose button was a View held in memory
        bobs = await privacy_answer(fake, fake.bob)
        posted_by_an_older_version(bobs, "privacy:forget")
    async with bot_rig.run() as bot:  # a new process on the same database
        info = await fake.press(first, custom_id("info", job_id_of(first)), user=fake.bob)
        await answered_once(info)
        assert "```\n/pokemon prompt:ピカチュウ" in await private_answer(info)

        expired = await fake.press(first, "pkmn:regen:abc", user=fake.bob, strict=False)
        await answered_once(expired)
        assert expired.original_message is not None
        assert expired.original_message.content == t("button.expired", "en")

        forget = await fake.press(alices, forget_id(fake.alice.id), user=fake.alice)
        await answered_once(forget)
        await fake.wait_until(lambda: alices.components == [], 30)
        # Her one job, and the record that her first picture here pointed her to /about.
        assert t("count.records", "en", count=2) in alices.content
        assert await bot.store.jobs.recent_for_user(fake.alice.id) == []

        # The old button forgets whoever it was shown to (its message was ephemeral): bob.
        old = await fake.press(bobs, "privacy:forget", user=fake.bob)
        await answered_once(old)
        await fake.wait_until(lambda: bobs.components == [], 30)
        assert bobs.content.startswith("Done:")


async def test_new_variation_in_a_thread_obeys_its_parent_channels_integrations_settings(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    other = fake.add_channel(fake.guild, "other")
    thread = fake.add_thread(fake.channel, "スレッド")
    async with bot_rig.run() as bot:
        record = await fake.invoke("pokemon", {"prompt": "ピカチュウ"}, channel=thread)
        first = await bot_rig.wait_result(record)
        assert first.channel_id == thread.id
        regen = custom_id("regen", job_id_of(first))
        # Off in another channel only: the thread (its parent's settings) still draws.
        await fake.set_command_permissions(
            fake.guild, "pokemon", [{"id": other.id, "type": CHANNEL_TYPE, "permission": False}]
        )
        await fake.wait_for_event("APPLICATION_COMMAND_PERMISSIONS_UPDATE")
        await fake.press(first, regen, user=fake.bob)
        await fake.wait_until(lambda: drawn(fake, first), 30)
        # Off in the thread's parent channel: off in the thread too.
        await fake.set_command_permissions(
            fake.guild,
            "pokemon",
            [{"id": fake.channel.id, "type": CHANNEL_TYPE, "permission": False}],
        )
        await fake.wait_until(
            lambda: len(fake.dispatched("APPLICATION_COMMAND_PERMISSIONS_UPDATE")) == 2
        )
        press = await fake.press(first, regen, user=fake.moderator)
        assert await private_answer(press) == t("error.command_disabled", "en")
        assert await bot.store.jobs.recent_for_user(fake.moderator.id) == []
