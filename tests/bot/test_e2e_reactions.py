"""🔁 and 🗑️ on result messages, end to end against the fake Discord with the real worker."""

from __future__ import annotations

from bot.i18n import t
from bot.messaging import REGENERATE_EMOJI
from tests.bot.conftest import BotRig, only_notice_for, png_of
from tests.fakediscord import FakeDiscord, FakeMessage

TRASH = "🗑️"


async def first_result(
    bot_rig: BotRig, fake: FakeDiscord, prompt: str = "ピカチュウ"
) -> FakeMessage:
    record = await fake.invoke("pokemon", {"prompt": prompt, "seed": 7}, user=fake.alice)
    result = await bot_rig.wait_result(record)
    await fake.wait_until(lambda: result.reaction_users(REGENERATE_EMOJI))
    return result


def replies_to(fake: FakeDiscord, message: FakeMessage) -> list[FakeMessage]:
    return [
        m
        for m in fake.bot_messages(message.channel_id)
        if m.message_reference and int(m.message_reference["message_id"]) == message.id
    ]


async def test_another_users_regen_gives_a_second_image_replying_to_the_first(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        first = await first_result(bot_rig, fake_discord)
        await fake_discord.react(fake_discord.bob, first.channel_id, first.id, REGENERATE_EMOJI)

        def second_done() -> bool:
            return any(
                m.attachments and m.reaction_users(REGENERATE_EMOJI)
                for m in replies_to(fake_discord, first)
            )

        await fake_discord.wait_until(second_done, 30)
        (second,) = replies_to(fake_discord, first)
        assert png_of(second).size == (64, 64)
        assert second.reactions == {REGENERATE_EMOJI: [fake_discord.bot_user.id]}
        assert second.pings() == set()
        # Bob's 🔁 was taken back (so a later 🔁 is a new event); the bot's own stays.
        await fake_discord.wait_until(
            lambda: first.reaction_users(REGENERATE_EMOJI) == [fake_discord.bot_user.id]
        )
        # Progress was shown in the reply itself before the image replaced it.
        assert any("/3" in version.get("content", "") for version in second.versions)

        (parent,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        (child,) = await bot.store.jobs.recent_for_user(fake_discord.bob.id)
        assert child.parent_job_id == parent.id
        same = ("prompt", "negative_prompt", "steps", "guidance", "width", "height", "scheduler")
        assert {k: child.request[k] for k in same} == {k: parent.request[k] for k in same}
        assert child.request["seed"] != parent.request["seed"]
        assert child.state == "done"
        assert child.result_message_id == second.id
        assert child.reply_to_message_id == first.id
        # Counted against the reacting user's quota, not the requester's.
        bob = await bot.store.limits.quota(fake_discord.guild.id, fake_discord.bob.id)
        alice = await bot.store.limits.quota(fake_discord.guild.id, fake_discord.alice.id)
        assert (bob.used, alice.used) == (1, 1)


async def test_bots_own_reactions_are_ignored(bot_rig: BotRig, fake_discord: FakeDiscord) -> None:
    async with bot_rig.run() as bot:
        first = await first_result(bot_rig, fake_discord)
        bot_id = fake_discord.bot_user.id
        # Discord echoes the bot's own 🔁 back as MESSAGE_REACTION_ADD.
        await fake_discord.wait_for_event(
            "MESSAGE_REACTION_ADD", lambda d: int(d["user_id"]) == bot_id
        )
        # A later job through the same loop: by the time it is done, the echo was handled.
        record = await fake_discord.invoke("pokemon", {"prompt": "ゼニガメ"}, user=fake_discord.bob)
        await bot_rig.wait_result(record)
        assert replies_to(fake_discord, first) == []
        assert len(await bot.store.jobs.recent_for_user(bot_id)) == 0
        assert len(await bot.store.jobs.recent_for_user(fake_discord.alice.id)) == 1


async def test_repeated_regen_by_one_user_while_pending_queues_one_job(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        first = await first_result(bot_rig, fake_discord)
        bot_rig.engine.close_gate()
        bob = fake_discord.bob
        for _ in range(3):
            await fake_discord.react(bob, first.channel_id, first.id, REGENERATE_EMOJI)
            await fake_discord.unreact(bob, first.channel_id, first.id, REGENERATE_EMOJI)
        # The first 🔁 runs (held at the gate); the others find it pending. Without the check,
        # bob's pending cap (2) would still let a second one in.
        await fake_discord.wait_until(lambda: replies_to(fake_discord, first))
        await fake_discord.wait_until(lambda: bot.generator.worker.running == 1)
        bot_rig.engine.open_gate()
        await fake_discord.wait_until(
            lambda: all(m.attachments for m in replies_to(fake_discord, first)), 30
        )
        jobs = await bot.store.jobs.recent_for_user(bob.id)
        assert len(jobs) == 1
        assert len(replies_to(fake_discord, first)) == 1


async def test_regen_over_the_limit_is_refused_naming_that_user_without_pinging_anyone(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        first = await first_result(bot_rig, fake_discord)
        bob = fake_discord.bob
        await bot.store.limits.set_user(
            fake_discord.guild.id, bob.id, 0, "day", actor_id=fake_discord.owner.id
        )
        await fake_discord.react(bob, first.channel_id, first.id, REGENERATE_EMOJI)

        notice = await only_notice_for(fake_discord, bob, first.channel_id)
        assert t("error.blocked", "en") in notice.content
        # A refusal is not worth a notification: the mention names bob, pings nobody.
        assert notice.pings() == set()
        assert await bot.store.jobs.recent_for_user(bob.id) == []


async def _trash_and_settle(
    bot_rig: BotRig, fake: FakeDiscord, user: object, message: FakeMessage
) -> None:
    """React 🗑️, then run a whole job: once its image is out, the 🗑️ was long handled."""
    await fake.react(user, message.channel_id, message.id, TRASH)
    marker = await fake.invoke("pokemon", {"prompt": "目印"}, user=fake.moderator)
    await bot_rig.wait_result(marker)


async def test_trash_from_someone_else_is_ignored_and_from_the_requester_deletes(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run():
        first = await first_result(bot_rig, fake_discord)
        await _trash_and_settle(bot_rig, fake_discord, fake_discord.bob, first)
        assert not first.deleted
        await fake_discord.react(fake_discord.alice, first.channel_id, first.id, TRASH)
        await fake_discord.wait_until(lambda: first.deleted)


async def test_trash_from_a_manage_server_member_deletes(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run():
        first = await first_result(bot_rig, fake_discord)
        await fake_discord.react(fake_discord.moderator, first.channel_id, first.id, TRASH)
        await fake_discord.wait_until(lambda: first.deleted)
