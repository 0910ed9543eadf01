"""`/settings` and `/history` end to end: the real bot, worker and SQLite against the loopback
Discord. Your own defaults are used by `/pokemon` when an option is left out (another user is
unaffected, a typed option wins, admins' limits still apply), they survive a restart, and
`/history` lists only your pictures, with links to their messages."""

from __future__ import annotations

import asyncio
import re

from bot.custom_ids import history_id, negative_form_id, settings_id
from bot.i18n import t
from bot.validation import size_dimensions
from tests.bot.conftest import BotRig, png_of
from tests.bot.test_e2e_buttons import private_answer
from tests.fakediscord import FakeDiscord, FakeMessage, InteractionRecord

LINK = re.compile(r"https://discord\.com/channels/(\d+)/(\d+)/(\d+)")


async def open_settings(fake: FakeDiscord, user: object, locale: str = "en") -> FakeMessage:
    record = await fake.invoke("settings", user=user, locale=locale)
    callback = await record.wait_response()
    assert callback.type == 4
    assert callback.ephemeral, "/settings is answered privately"
    message = record.original_message
    assert message is not None
    return message


async def choose(
    fake: FakeDiscord, message: FakeMessage, user: object, field: str, value: str
) -> InteractionRecord:
    record = await fake.press(message, settings_id(fake_id(user), field), user=user, values=[value])
    await record.wait_response()
    await record.wait_edits(1)
    assert record.rejected == []
    return record


def fake_id(user: object) -> int:
    return getattr(user, "id", user)  # type: ignore[return-value]


async def draw(bot_rig: BotRig, fake: FakeDiscord, user: object, **options: object) -> FakeMessage:
    record = await fake.invoke("pokemon", {"prompt": "ピカチュウ", **options}, user=user)
    return await bot_rig.wait_result(record)


async def test_settings_then_pokemon_without_options_uses_the_saved_size_and_count_only_for_you(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    side = bot_rig.settings.pokemon_size
    async with bot_rig.run():
        message = await open_settings(fake, fake.alice)
        await choose(fake, message, fake.alice, "size", "portrait")
        await choose(fake, message, fake.alice, "count", "2")
        assert "**portrait**" in message.content
        assert "**2 images**" in message.content

        mine = await draw(bot_rig, fake, fake.alice)
        theirs = await draw(bot_rig, fake, fake.bob)
        typed = await draw(bot_rig, fake, fake.alice, count=1, size="square")

    assert len(mine.attachments) == 2
    assert png_of(mine).size == size_dimensions(side, "portrait")
    assert len(theirs.attachments) == 1, "another user's /pokemon is unaffected"
    assert png_of(theirs).size == (side, side)
    assert len(typed.attachments) == 1, "an option typed in always wins"
    assert png_of(typed).size == (side, side)


async def test_a_default_negative_prompt_is_set_through_its_form_and_used(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        message = await open_settings(fake, fake.alice)
        opened = await fake.press(message, settings_id(fake.alice.id, "negative"), user=fake.alice)
        callback = await opened.wait_response()
        assert callback.type == 9, "the button answers with its form (a modal)"
        assert callback.data is not None
        assert callback.data["custom_id"] == negative_form_id(fake.alice.id)

        sent = await fake.submit_form(
            message, negative_form_id(fake.alice.id), {"negative": "ぼやけた"}, user=fake.alice
        )
        await sent.wait_edits(1)
        assert sent.rejected == []
        assert "ぼやけた" in message.content

        await draw(bot_rig, fake, fake.alice)
        (job,) = await bot.store.jobs.recent_for_user(fake.alice.id)
        assert job.request["negative_prompt"] == "ぼやけた"


async def test_reset_goes_back_to_the_servers_defaults(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        message = await open_settings(fake, fake.alice)
        await choose(fake, message, fake.alice, "count", "3")
        reset = await fake.press(message, settings_id(fake.alice.id, "reset"), user=fake.alice)
        await reset.wait_edits(1)

        assert (await bot.store.user_settings.get(fake.alice.id)).count is None
        assert t("settings.server_value", "en", value="1 image") in message.content
        result = await draw(bot_rig, fake, fake.alice)
    assert len(result.attachments) == 1


async def test_someone_elses_settings_cannot_be_changed(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        message = await open_settings(fake, fake.alice)
        # A forged press (Discord shows an ephemeral message to its user only).
        record = await fake.press(
            message, settings_id(fake.alice.id, "count"), user=fake.bob, values=["4"], strict=False
        )
        answer = await private_answer(record)
        assert answer == t("error.not_allowed", "en")
        assert (await bot.store.user_settings.get(fake.alice.id)).count is None


async def test_the_settings_message_still_works_after_a_restart(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run():
        message = await open_settings(fake, fake.alice)
    async with bot_rig.run() as bot:
        await choose(fake, message, fake.alice, "translate", "off")
        assert (await bot.store.user_settings.get(fake.alice.id)).translate is False


async def test_a_default_count_over_the_whole_limit_draws_the_limit_and_over_whats_left_is_refused(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        await bot.store.limits.set_user(
            fake.guild.id, fake.alice.id, 3, "day", actor_id=fake.bob.id
        )
        message = await open_settings(fake, fake.alice)
        await choose(fake, message, fake.alice, "count", "4")

        first = await draw(bot_rig, fake, fake.alice)  # 4 > the limit of 3: drawn 3
        assert len(first.attachments) == 3
        said = t("settings.note.count_over_limit", "en", count=4, limit=3)
        assert said in [f["value"] for f in first.embeds[0]["fields"]], "and the picture says so"

        await choose(fake, message, fake.alice, "count", "2")
        await bot.store.limits.set_user(
            fake.guild.id, fake.alice.id, 4, "day", actor_id=fake.bob.id
        )
        refused = await fake.invoke("pokemon", {"prompt": "ピカチュウ"}, user=fake.alice)
        (answer,) = await refused.wait_followups(1)
        # 2 within the limit of 4, but only 1 left: refused like a typed count:2.
        assert answer.ephemeral
        assert "2 images" in answer.content
        assert "1 image" in answer.content


async def test_history_lists_only_your_pictures_newest_first_with_working_links(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run():
        first = await draw(bot_rig, fake, fake.alice, seed=101)
        second = await draw(bot_rig, fake, fake.alice, seed=102)
        await draw(bot_rig, fake, fake.bob, seed=103)

        record = await fake.invoke("history", user=fake.alice)
        callback = await record.wait_response()
        assert callback.ephemeral
        message = record.original_message
        assert message is not None
        (embed,) = message.embeds
        links = LINK.findall(embed["description"])

    assert [int(m) for _, _, m in links] == [second.id, first.id]
    for guild_id, channel_id, message_id in links:
        target = fake.messages[int(message_id)]
        assert int(guild_id) == fake.guild.id
        assert int(channel_id) == target.channel_id
        assert target.attachments, "the link leads to the picture"
    assert "seed 102" in embed["description"]
    assert "103" not in embed["description"]


async def test_history_pages_with_buttons_and_says_so_when_empty(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run():
        empty = await fake.invoke("history", user=fake.bob, locale="ja")
        await empty.wait_response()
        assert empty.original_message is not None
        (embed,) = empty.original_message.embeds
        assert embed["description"] == t("history.empty", "ja")

        for seed in range(6):
            await draw(bot_rig, fake, fake.alice, seed=200 + seed)
        record = await fake.invoke("history", user=fake.alice)
        await record.wait_response()
        message = record.original_message
        assert message is not None
        assert "seed 205" in message.embeds[0]["description"]
        older = await fake.press(message, history_id(fake.alice.id, 1), user=fake.alice)
        await older.wait_edits(1)
        assert older.rejected == []
        assert "seed 200" in message.embeds[0]["description"]
        assert "seed 205" not in message.embeds[0]["description"]
        assert message.embeds[0]["footer"]["text"] == t("history.footer", "en", page=2, pages=2)


def notes_of(message: FakeMessage) -> list[str]:
    return [f["value"] for f in message.embeds[0]["fields"] if f["name"] == "ℹ️"]


async def test_the_first_picture_in_a_server_points_to_about_once_per_user(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    notice = t("about.first_notice", "ja")
    async with bot_rig.run():
        refused = await fake.invoke(
            "pokemon", {"prompt": "ピカチュウ", "steps": 1000}, user=fake.alice, strict=False
        )
        await refused.wait_response()  # refused before anything was drawn: not shown yet
        first = await draw_in(bot_rig, fake, fake.alice, "ja")
        second = await draw_in(bot_rig, fake, fake.alice, "ja")
        theirs = await draw_in(bot_rig, fake, fake.bob, "ja")
    async with bot_rig.run():
        after_restart = await draw_in(bot_rig, fake, fake.alice, "ja")

    assert notes_of(first) == [notice]
    assert notes_of(second) == []
    assert notes_of(theirs) == [notice], "once per user"
    assert notes_of(after_restart) == [], "remembered on disk"


async def draw_in(bot_rig: BotRig, fake: FakeDiscord, user: object, locale: str) -> FakeMessage:
    record = await fake.invoke("pokemon", {"prompt": "ピカチュウ"}, user=user, locale=locale)
    return await bot_rig.wait_result(record)


async def test_settings_and_history_items_pressed_twice_at_once_are_each_answered_once(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        for seed in range(6):
            await draw(bot_rig, fake, fake.alice, seed=300 + seed)
        settings = await open_settings(fake, fake.alice)
        record = await fake.invoke("history", user=fake.alice)
        await record.wait_response()
        history = record.original_message
        assert history is not None

        presses = await asyncio.gather(
            fake.press(
                settings, settings_id(fake.alice.id, "count"), user=fake.alice, values=["2"]
            ),
            fake.press(
                settings, settings_id(fake.alice.id, "count"), user=fake.alice, values=["2"]
            ),
            fake.press(history, history_id(fake.alice.id, 1), user=fake.alice),
            fake.press(history, history_id(fake.alice.id, 1), user=fake.alice),
        )
        for press in presses:
            await press.wait_edits(1)
            assert len(press.callbacks) == 1, press.callbacks
            assert press.rejected == [], press.rejected
        assert (await bot.store.user_settings.get(fake.alice.id)).count == 2
        assert "seed 300" in history.embeds[0]["description"]
