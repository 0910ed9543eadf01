"""🎨 and `/pokemon image: strength:` end to end: the source picture is read from Discord (a
result message's attachment, or an upload the fake serves), checked before anything is
charged, and drawn over at the job's size by the real worker on the tiny checkpoint."""

from __future__ import annotations

import io
import re
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image

from bot.buttons import custom_id
from bot.i18n import t
from bot.messaging import REGENERATE_EMOJI, VARY_EMOJI
from bot.validation import VARY_STRONG
from storage import NewJob, Storage
from tests.bot.conftest import BotRig, only_notice_for, png_of
from tests.bot.test_e2e_buttons import parse_command_line
from tests.fakediscord import FakeDiscord, FakeMessage, WireValue


def picture(width: int, height: int, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (40, 120, 200)).save(buffer, format=fmt)
    return buffer.getvalue()


def huge_png(side: int = 5000) -> bytes:
    """A small file that would decode to 25 megapixels (a decompression bomb)."""
    row = b"\x00" + b"\x00" * side
    raw = zlib.compress(row * side, 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


async def delivered(rig: BotRig, record: Any) -> FakeMessage:
    result = await rig.wait_result(record)
    await rig.fake.wait_until(lambda: result.reaction_users(REGENERATE_EMOJI))
    return result


def replies_with_pictures(
    fake: FakeDiscord, message: FakeMessage, *, reacted: bool = True
) -> list[FakeMessage]:
    """The bot's replies to `message` with a picture, finished (with 🔁 added when `reacted`;
    an upscale gets none)."""
    return [
        m
        for m in fake.bot_messages(message.channel_id)
        if m.message_reference
        and int(m.message_reference["message_id"]) == message.id
        and m.attachments
        and m.embeds
        and (m.reaction_users(REGENERATE_EMOJI) or not reacted)
    ]


async def test_vary_reaction_draws_a_new_picture_from_that_picture_for_the_reacter(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        first = await delivered(
            bot_rig,
            await fake_discord.invoke(
                "pokemon", {"prompt": "ピカチュウ", "seed": 3, "size": "portrait", "steps": 4}
            ),
        )
        bob = fake_discord.bob
        await fake_discord.react(bob, first.channel_id, first.id, VARY_EMOJI)
        await fake_discord.wait_until(lambda: replies_with_pictures(fake_discord, first), 30)
        (varied,) = replies_with_pictures(fake_discord, first)

        assert png_of(varied).size == (64, 96)  # the parent's size
        assert varied.attachments[0].data != first.attachments[0].data
        (parent,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        (child,) = await bot.store.jobs.recent_for_user(bob.id)
        assert child.parent_job_id == parent.id
        assert child.request["prompt"] == parent.request["prompt"]
        assert child.request["seed"] != parent.request["seed"]
        assert child.request["strength"] == VARY_STRONG
        assert "init_image" not in child.request  # the picture is never stored
        assert child.state == "done"
        assert (await bot.store.limits.quota(fake_discord.guild.id, bob.id)).used == 1
        # ℹ️ on the varied picture, in Japanese: its strength, and that the line needs the source.
        press = await fake_discord.press(
            varied, custom_id("info", child.id), user=fake_discord.alice, locale="ja"
        )
        (answer,) = await press.wait_followups(1)
        assert t("details.strength", "ja", strength=f"{VARY_STRONG:g}") in answer.content
        assert t("details.command_from_picture", "ja") in answer.content
        assert f"strength:{VARY_STRONG:g}" in answer.content
        # Bob's 🎨 was taken back, so a later one is a fresh event.
        await fake_discord.wait_until(lambda: first.reaction_users(VARY_EMOJI) == [])

        # 🔁 on the varied picture varies the same source again (read from the message).
        await fake_discord.react(fake_discord.moderator, varied.channel_id, varied.id, "🔁")
        await fake_discord.wait_until(lambda: replies_with_pictures(fake_discord, varied), 30)
        (again,) = await bot.store.jobs.recent_for_user(fake_discord.moderator.id)
        assert again.request["strength"] == VARY_STRONG
        assert again.reply_to_message_id == varied.id


async def test_pokemon_image_starts_from_the_upload_at_the_jobs_size(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        upload = fake_discord.upload("mine.jpg", picture(200, 120, "JPEG"))
        record = await fake_discord.invoke(
            "pokemon",
            {"prompt": "ピカチュウ", "image": upload, "strength": 0.5, "size": "landscape"},
        )
        result = await delivered(bot_rig, record)
        assert png_of(result).size == (96, 64)
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        assert job.request["strength"] == 0.5
        assert "init_image" not in job.request
        assert (
            await bot.store.limits.quota(fake_discord.guild.id, fake_discord.alice.id)
        ).used == 1

        # ℹ️ shows the strength and says the line needs the picture: with it, the same PNG.
        press = await fake_discord.press(result, custom_id("info", job.id), user=fake_discord.bob)
        (answer,) = await press.wait_followups(1)
        assert answer.ephemeral
        details = answer.content
        assert t("details.strength", "en", strength="0.5") in details
        assert t("details.command_from_picture", "en") in details
        assert t("details.command", "en") not in details  # not "draws the same picture"
        line = re.search(r"```\n(/pokemon .*)\n```", details)
        assert line is not None
        options = parse_command_line(line[1])
        assert options == {
            "prompt": "ピカチュウ",
            "seed": job.request["seed"],
            "steps": job.request["steps"],
            "guidance": 7.5,
            "size": "landscape",
            "strength": 0.5,
        }
        again = await fake_discord.invoke(
            "pokemon",
            {**options, "image": fake_discord.upload("mine.jpg", picture(200, 120, "JPEG"))},
            user=fake_discord.bob,
        )
        redrawn = await delivered(bot_rig, again)
        assert redrawn.attachments[0].data == result.attachments[0].data

        # 🔁 on it cannot draw from the upload again: it was never stored.
        bob = fake_discord.bob
        await fake_discord.react(bob, result.channel_id, result.id, REGENERATE_EMOJI)

        notice = await only_notice_for(fake_discord, bob, result.channel_id)
        assert t("error.source_gone", "en") in notice.content
        assert len(await bot.store.jobs.recent_for_user(bob.id)) == 1  # only the redraw


BAD_UPLOADS = {
    "not an image": (("notes.txt", b"just some text, not a picture"), "error.image_type"),
    "a gif": (("anim.gif", b"GIF89a" + b"\x00" * 64), "error.image_type"),
    "broken png": (
        ("broken.png", picture(64, 64)[:60] + b"\x00" * 40),
        "error.image_broken",
    ),
    "over 10 MB": (("big.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * (10 * 1024 * 1024)), None),
    "25 megapixels": (("bomb.png", huge_png()), "error.image_too_large"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
async def test_a_bad_upload_is_refused_with_one_clear_message_and_nothing_charged(
    bot_rig: BotRig, fake_discord: FakeDiscord, case: str
) -> None:
    (filename, data), key = BAD_UPLOADS[case]
    async with bot_rig.run() as bot:
        upload = fake_discord.upload(filename, data)
        if key is None:
            # Over 10 MB: refused from the size Discord states, never downloaded (a download
            # would now fail, and the message would say so instead).
            del fake_discord.attachments[upload.id]
        record = await fake_discord.invoke(
            "pokemon", {"prompt": "ピカチュウ", "image": upload}, locale="ja"
        )
        (followup,) = await record.wait_followups(1, within=30)
        assert followup.ephemeral
        assert followup.content == t(key or "error.image_too_large", "ja")
        assert await bot.store.jobs.recent_for_user(fake_discord.alice.id) == []
        quota = await bot.store.limits.quota(fake_discord.guild.id, fake_discord.alice.id)
        assert quota.used == 0


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"strength": WireValue(0.95)}, "error.strength_range"),
        ({"strength": WireValue(0.05)}, "error.strength_range"),
        ({"strength": 0.1, "steps": 3}, "error.strength_steps"),
    ],
)
async def test_a_bad_strength_is_refused_before_anything_is_read_or_charged(
    bot_rig: BotRig, fake_discord: FakeDiscord, options: dict[str, object], key: str
) -> None:
    async with bot_rig.run() as bot:
        upload = fake_discord.upload("mine.png", picture(64, 64))
        record = await fake_discord.invoke(
            "pokemon", {"prompt": "ピカチュウ", "image": upload, **options}, strict=False
        )
        callback = await record.wait_response()
        assert callback.ephemeral
        assert callback.data is not None
        assert callback.data["content"] == t(key, "en", min=0.1, max=0.9, steps=3, strength="0.1")
        assert await bot.store.jobs.recent_for_user(fake_discord.alice.id) == []


async def test_strength_without_an_image_is_refused(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        record = await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ", "strength": 0.5})
        callback = await record.wait_response()
        assert callback.data is not None
        assert callback.data["content"] == t("error.strength_without_image", "en")
        assert await bot.store.jobs.recent_for_user(fake_discord.alice.id) == []


async def test_vary_on_a_result_whose_picture_is_gone_is_refused_without_charge(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        first = await delivered(
            bot_rig, await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ"})
        )
        # Someone removed the picture from the message (an edit by a moderator tool).
        first.attachments.clear()
        bob = fake_discord.bob
        await fake_discord.react(bob, first.channel_id, first.id, VARY_EMOJI)

        notice = await only_notice_for(fake_discord, bob, first.channel_id)
        assert t("error.source_gone", "en") in notice.content
        assert await bot.store.jobs.recent_for_user(bob.id) == []


async def test_an_image_to_image_job_resumed_after_a_restart_is_refused_as_its_source_is_gone(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    asked = await fake_discord.post_message(fake_discord.alice, fake_discord.channel, "...")
    recently = datetime.now(UTC) - timedelta(minutes=1)
    async with await Storage.open(bot_rig.settings.pokemon_db, clock=lambda: recently) as store:
        admission = await store.admit(
            NewJob(
                user_id=fake_discord.alice.id,
                guild_id=fake_discord.guild.id,
                channel_id=fake_discord.channel.id,
                request={
                    "prompt": "ピカチュウ",
                    "seed": 1,
                    "steps": 3,
                    "width": 64,
                    "height": 64,
                    "strength": 0.65,
                },
                reply_to_message_id=asked.id,
            )
        )
        assert admission.job is not None
    async with bot_rig.run() as bot:
        job = await bot.store.jobs.get(admission.job.id)
        assert job is not None
        assert (job.state, job.error_code, job.fault) == ("failed", "source_gone", "rejected")
        await fake_discord.wait_until(fake_discord.bot_messages)
        (notice,) = fake_discord.bot_messages()
        assert notice.content == f"<@{fake_discord.alice.id}> " + t("error.source_gone", "en")


async def test_vary_buttons_draw_subtle_and_strong_variations_for_the_presser(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        first = await delivered(
            bot_rig,
            await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ", "steps": 4}, locale="ja"),
        )
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        subtle = first.component(custom_id("vary", job.id, "subtle"))
        assert subtle is not None
        assert subtle["label"] == t("vary.button.subtle", "ja")

        for user, kind in ((fake_discord.bob, "subtle"), (fake_discord.moderator, "strong")):
            record = await fake_discord.press(first, custom_id("vary", job.id, kind), user=user)
            callback = await record.wait_response()
            assert callback.type == 6  # acknowledged; the pressed message stays
        await fake_discord.wait_until(
            lambda: len(replies_with_pictures(fake_discord, first)) == 2, 60
        )
        (bob_job,) = await bot.store.jobs.recent_for_user(fake_discord.bob.id)
        (mod_job,) = await bot.store.jobs.recent_for_user(fake_discord.moderator.id)
        assert (bob_job.request["strength"], mod_job.request["strength"]) == (0.35, 0.65)
        assert bob_job.parent_job_id == mod_job.parent_job_id == job.id
        for varied in replies_with_pictures(fake_discord, first):
            assert png_of(varied).size == (64, 64)
        assert (await bot.store.limits.quota(fake_discord.guild.id, fake_discord.bob.id)).used == 1


async def test_vary_button_refusal_is_private_to_the_presser(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        first = await delivered(
            bot_rig, await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ", "steps": 4})
        )
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        bob = fake_discord.bob
        await bot.store.limits.set_user(
            fake_discord.guild.id, bob.id, 0, "day", actor_id=fake_discord.owner.id
        )
        record = await fake_discord.press(first, custom_id("vary", job.id, "strong"), user=bob)
        (followup,) = await record.wait_followups(1)
        assert followup.ephemeral
        assert followup.content == t("error.blocked", "en")
        assert await bot.store.jobs.recent_for_user(bob.id) == []


async def test_vary_buttons_under_a_set_start_from_the_picture_they_name(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    def downloads(attachment_id: int) -> int:
        return fake_discord.downloads.count(attachment_id)

    async with bot_rig.run() as bot:
        first = await delivered(
            bot_rig,
            await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ", "steps": 4, "count": 2}),
        )
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        one, two = first.attachments
        # One 🎨 per picture and strength, each naming its picture; none that names no picture.
        for kind in ("subtle", "strong"):
            assert first.component(custom_id("vary", job.id, kind)) is None
            assert first.component(custom_id("vary", job.id, f"{kind}3")) is None
            for n in (1, 2):
                button = first.component(custom_id("vary", job.id, f"{kind}{n}"))
                assert button is not None
                assert button["label"] == t(f"vary.button.{kind}_n", "en", n=n)

        bob = fake_discord.bob
        record = await fake_discord.press(first, custom_id("vary", job.id, "strong2"), user=bob)
        await record.wait_response()
        await fake_discord.wait_until(lambda: replies_with_pictures(fake_discord, first), 30)
        (varied,) = replies_with_pictures(fake_discord, first)
        (child,) = await bot.store.jobs.recent_for_user(bob.id)
        assert (child.request["strength"], child.request["source_picture"]) == (VARY_STRONG, 2)
        assert (downloads(one.id), downloads(two.id)) == (0, 1)
        # A single picture's buttons are the one row of five, 🎨 without a number.
        assert child.result_message_id == varied.id
        assert varied.component(custom_id("vary", child.id, "strong")) is not None

        # 🔁 on the varied picture varies picture 2 of the set again.
        moderator = fake_discord.moderator
        await fake_discord.react(moderator, varied.channel_id, varied.id, REGENERATE_EMOJI)
        await fake_discord.wait_until(lambda: replies_with_pictures(fake_discord, varied), 30)
        assert (downloads(one.id), downloads(two.id)) == (0, 2)
