"""⬆️ Upscale end to end: the real bot, the worker thread with the tiny engine and the tiny
random-weight 4x upscaler (`tiny_upscale_runner`), SQLite, and the loopback fake Discord. The
pressed picture is read from its message, upscaled on the worker thread and posted 4x larger as
a reply to it; the original message stays as it was."""

from __future__ import annotations

import copy
import io
from typing import Any

from PIL import Image

from bot.buttons import custom_id
from bot.i18n import t
from bot.messaging import REGENERATE_EMOJI, VARY_EMOJI
from generation.upscale_encode import read_parameters
from tests.bot.conftest import BotRig, notices_for, png_of
from tests.bot.test_e2e_vary import delivered, replies_with_pictures
from tests.fakediscord import FakeDiscord, FakeMessage


def upscaled_replies(fake: FakeDiscord, message: FakeMessage) -> list[FakeMessage]:
    """The bot's replies to `message` that carry a picture (an upscale's finished message)."""
    return replies_with_pictures(fake, message, reacted=False)


def snapshot(message: FakeMessage) -> tuple[Any, ...]:
    return (
        message.content,
        [a.data for a in message.attachments],
        copy.deepcopy(message.embeds),
        copy.deepcopy(message.components),
        message.edited_at,
        len(message.versions),
    )


async def used(bot: Any, fake: FakeDiscord, user: Any) -> int:
    return (await bot.store.limits.quota(fake.guild.id, user.id)).used


async def test_upscale_button_replies_4x_larger_for_the_requester_and_anyone_else(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    alice, bob = fake_discord.alice, fake_discord.bob
    async with bot_rig.run() as bot:
        first = await delivered(
            bot_rig, await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ", "seed": 5})
        )
        (job,) = await bot.store.jobs.recent_for_user(alice.id)
        button = first.component(custom_id("up", job.id))
        assert button is not None
        assert button["emoji"]["name"] == "⬆️"
        before = snapshot(first)

        for n, user in enumerate((alice, bob), start=1):
            record = await fake_discord.press(first, custom_id("up", job.id), user=user)
            assert (await record.wait_response()).type == 6  # acknowledged within 3 s
            await fake_discord.wait_until(
                lambda n=n: len(upscaled_replies(fake_discord, first)) == n, 60
            )

        replies = upscaled_replies(fake_discord, first)
        for reply in replies:
            assert png_of(reply).size == (256, 256)  # 64² → 4x in each side
            assert reply.attachments[0].filename.endswith("-x4.png")
            (embed,) = reply.embeds
            assert embed["title"] == t("upscale.title", "en", width=256, height=256)
            assert f"#{job.id}" in [f["value"] for f in embed["fields"]]
            assert "tiny-x4" in [f["value"] for f in embed["fields"]]
            # The parameters chunk of the source is kept, with the upscale step added.
            text = read_parameters(png_of(reply)) or ""
            assert "ピカチュウ" in text
            assert "Seed: 5" in text
            assert "tiny-x4" in text
            assert reply.reaction_users(REGENERATE_EMOJI) == []  # no 🔁 on an upscale
        assert snapshot(first) == before  # the original untouched

        (alice_up, _) = await bot.store.jobs.recent_for_user(alice.id)
        (bob_up,) = await bot.store.jobs.recent_for_user(bob.id)
        for up in (alice_up, bob_up):
            assert up.request["kind"] == "upscale"
            assert "init_image" not in up.request  # the picture is never stored
            assert up.parent_job_id == job.id
            assert up.state == "done"
        assert {alice_up.result_message_id, bob_up.result_message_id} == {r.id for r in replies}
        # Each upscale counts as one picture of the presser's limit.
        assert await used(bot, fake_discord, alice) == 2
        assert await used(bot, fake_discord, bob) == 1

        # ⬆️ under the upscaled picture: refused privately, nothing charged.
        reply = next(r for r in replies if r.id == bob_up.result_message_id)
        again = await fake_discord.press(reply, custom_id("up", bob_up.id), user=bob)
        (answer,) = await again.wait_followups(1)
        assert answer.ephemeral
        assert answer.content == t("upscale.already", "en")
        assert await used(bot, fake_discord, bob) == 1
        assert len(await bot.store.jobs.recent_for_user(bob.id)) == 1

        # 🎨 and 🔁 reactions on it: refused (they start from a drawing), nothing charged.
        refusal = t("upscale.not_a_drawing", "en")
        for n, emoji in enumerate((VARY_EMOJI, REGENERATE_EMOJI), start=1):
            await fake_discord.react(bob, reply.channel_id, reply.id, emoji)
            await fake_discord.wait_until(
                lambda n=n: (
                    [m.content.endswith(refusal) for m in notices_for(fake_discord, bob)]
                    == [True] * n
                )
            )
        assert await used(bot, fake_discord, bob) == 1
        assert len(await bot.store.jobs.recent_for_user(bob.id)) == 1


async def test_upscale_2_under_a_set_upscales_the_second_picture(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        first = await delivered(
            bot_rig,
            await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ", "seed": 40, "count": 2}),
        )
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        one, two = first.attachments
        assert first.component(custom_id("up", job.id)) is None  # a set: one per picture
        for n in (1, 2):
            button = first.component(custom_id("up", job.id, str(n)))
            assert button is not None
            assert button["label"] == t("button.up_n", "en", n=n)

        bob = fake_discord.bob
        record = await fake_discord.press(first, custom_id("up", job.id, "2"), user=bob)
        await record.wait_response()
        await fake_discord.wait_until(lambda: upscaled_replies(fake_discord, first), 60)
        (reply,) = upscaled_replies(fake_discord, first)

        assert png_of(reply).size == (256, 256)
        assert "Seed: 41" in (read_parameters(png_of(reply)) or "")  # picture 2's seed
        assert fake_discord.downloads.count(one.id) == 0
        assert fake_discord.downloads.count(two.id) == 1
        (up,) = await bot.store.jobs.recent_for_user(bob.id)
        assert (up.request["seed"], up.request["source_picture"]) == (41, 2)


async def test_a_queued_upscale_can_be_cancelled_and_a_repeat_press_is_told_it_is_coming(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    alice = fake_discord.alice
    async with bot_rig.run() as bot:
        first = await delivered(bot_rig, await fake_discord.invoke("pokemon", {"prompt": "ピカ"}))
        (job,) = await bot.store.jobs.recent_for_user(alice.id)
        bot_rig.engine.close_gate()  # bob's drawing holds the worker: the upscale waits
        await fake_discord.invoke("pokemon", {"prompt": "ライチュウ"}, user=fake_discord.bob)
        await fake_discord.wait_until(lambda: bot_rig.engine.calls == 2)

        record = await fake_discord.press(first, custom_id("up", job.id), user=alice)
        await record.wait_response()
        await fake_discord.wait_until(lambda: len(bot.service.active) == 2)
        up_id = max(bot.service.active)

        def progress() -> FakeMessage | None:
            return next(
                (
                    m
                    for m in fake_discord.bot_messages(first.channel_id)
                    if m.component(custom_id("cancel", up_id)) is not None
                ),
                None,
            )

        await fake_discord.wait_until(lambda: progress() is not None)
        repeat = await fake_discord.press(first, custom_id("up", job.id), user=alice)
        (answer,) = await repeat.wait_followups(1)
        assert answer.content in {
            t("regen.already_pending", "en"),
            t("regen.already_pending_place", "en", position=1),
        }

        message = progress()
        assert message is not None
        cancel = await fake_discord.press(message, custom_id("cancel", up_id), user=alice)
        await cancel.wait_response()
        await fake_discord.wait_until(
            lambda: t("job.cancelled_by", "en", user=f"<@{alice.id}>") in message.content
        )
        row = await bot.store.jobs.get(up_id)
        assert row is not None
        assert row.state == "cancelled"
        assert await used(bot, fake_discord, alice) == 1  # only the drawing counts
        bot_rig.engine.open_gate()
        assert upscaled_replies(fake_discord, first) == []


async def test_upscale_press_after_a_restart_works(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        first = await delivered(bot_rig, await fake_discord.invoke("pokemon", {"prompt": "ピカ"}))
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
    async with bot_rig.run():
        record = await fake_discord.press(first, custom_id("up", job.id), user=fake_discord.bob)
        await record.wait_response()
        await fake_discord.wait_until(lambda: upscaled_replies(fake_discord, first), 60)
        (reply,) = upscaled_replies(fake_discord, first)
        assert png_of(reply).size == (256, 256)


async def test_with_upscaling_off_the_button_says_so_and_charges_nothing(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    bot_rig.upscaler = None
    async with bot_rig.run() as bot:
        first = await delivered(bot_rig, await fake_discord.invoke("pokemon", {"prompt": "ピカ"}))
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        bob = fake_discord.bob
        record = await fake_discord.press(first, custom_id("up", job.id), user=bob)
        (answer,) = await record.wait_followups(1)
        assert answer.ephemeral
        assert answer.content == t("error.upscaler_off", "en")
        assert await used(bot, fake_discord, bob) == 0
        assert upscaled_replies(fake_discord, first) == []


async def test_a_picture_over_the_upscalers_limit_or_gone_is_refused_without_charge(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        first = await delivered(bot_rig, await fake_discord.invoke("pokemon", {"prompt": "ピカ"}))
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        bob = fake_discord.bob
        # Its picture swapped for one over 1024² pixels (a larger POKEMON_MAX_PIXELS, say).
        big = io.BytesIO()
        Image.new("RGB", (1100, 1000), (10, 20, 30)).save(big, format="PNG")
        first.attachments[0].data = big.getvalue()
        first.attachments[0].width, first.attachments[0].height = 1100, 1000
        record = await fake_discord.press(first, custom_id("up", job.id), user=bob)
        (answer,) = await record.wait_followups(1)
        assert answer.content == t("error.gen.upscale_source_too_large", "en")
        # The picture removed from its message: the same refusal as 🎨's.
        first.attachments.clear()
        record = await fake_discord.press(first, custom_id("up", job.id), user=bob)
        (answer,) = await record.wait_followups(1)
        assert answer.content == t("error.source_gone", "en")
        assert await used(bot, fake_discord, bob) == 0
        assert upscaled_replies(fake_discord, first) == []
