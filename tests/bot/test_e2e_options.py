"""`/pokemon size:`, `count:` and `translate:` end to end: the real bot against the fake Discord,
the real worker on the tiny checkpoint (POKEMON_SIZE=64, so the sizes are 64×64, 64×96 and
96×64), and, for translation, a tiny MarianMT model built in the test."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from bot.buttons import custom_id
from bot.i18n import t
from bot.messaging import REGENERATE_EMOJI, quota_text
from bot.moderation import blocked_word
from bot.validation import SIZES, size_dimensions
from generation.pipeline import Engine
from generation.translate import MarianTranslator, load_translator
from tests.bot.conftest import BotRig, GatedEngine, png_of
from tests.fakediscord import FakeDiscord, FakeMessage
from tests.generation.tinymarian import build_tiny_marian

ENGLISH = "a fire dragon with blue wings"
NEGATIVE = "blurry, low quality, bad anatomy"


def pictures(message: FakeMessage) -> list[Image.Image]:
    images = [Image.open(io.BytesIO(a.data)) for a in message.attachments]
    for image in images:
        image.load()
    return images


async def delivered(rig: BotRig, record: Any) -> FakeMessage:
    """The result message once the job is recorded as done (the 🔁 is added after that)."""
    result = await rig.wait_result(record)
    await rig.fake.wait_until(lambda: result.reaction_users(REGENERATE_EMOJI))
    return result


def field(message: FakeMessage, name: str) -> str | None:
    (embed,) = message.embeds
    return next((f["value"] for f in embed.get("fields", []) if f["name"] == name), None)


async def test_each_size_gives_a_picture_of_that_size(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        for size in SIZES:
            record = await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ", "size": size})
            result = await delivered(bot_rig, record)
            assert png_of(result).size == size_dimensions(64, size)
        jobs = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        assert sorted((j.request["width"], j.request["height"]) for j in jobs) == sorted(
            size_dimensions(64, size) for size in SIZES
        )
    assert size_dimensions(512, "portrait") == (512, 768)  # the default POKEMON_SIZE
    choices = {
        c["name"]: c
        for c in next(c for c in fake_discord.registered_commands() if c["name"] == "pokemon")[
            "options"
        ]
    }["size"]["choices"]
    assert [(c["value"], c["name_localizations"]["ja"]) for c in choices] == [
        ("square", "正方形"),
        ("portrait", "縦長"),
        ("landscape", "横長"),
    ]


async def test_a_size_over_the_operators_pixel_cap_is_refused_and_not_counted(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    bot_rig.settings = bot_rig.settings.model_copy(update={"pokemon_max_pixels": 64 * 64})
    async with bot_rig.run() as bot:
        refused = await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ", "size": "portrait"})
        callback = await refused.wait_response()
        assert callback.ephemeral
        assert callback.data is not None
        assert callback.data["content"] == t(
            "error.size_too_large", "en", width=64, height=96, max=4096
        )
        assert await bot.store.jobs.recent_for_user(fake_discord.alice.id) == []
        result = await bot_rig.wait_result(
            await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ", "size": "square"})
        )
        assert png_of(result).size == (64, 64)


async def test_count_four_gives_four_distinct_seeded_pictures_in_one_message_as_one_batch(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        record = await fake_discord.invoke(
            "pokemon", {"prompt": "ピカチュウ", "count": 4, "seed": 100}
        )
        result = await delivered(bot_rig, record)
        assert [a.filename for a in result.attachments] == [
            f"pokemon-{seed}.png" for seed in (100, 101, 102, 103)
        ]
        assert field(result, "Seeds") == "100, 101, 102, 103"
        images = pictures(result)
        assert len({image.tobytes() for image in images}) == 4
        assert bot_rig.engine.calls == 1  # one pipeline call for the four
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        assert job.images == 4
        assert job.outcome is not None
        assert job.outcome["seeds"] == [100, 101, 102, 103]
        quota = await bot.store.limits.quota(fake_discord.guild.id, fake_discord.alice.id)
        assert quota.used == 4

        # The third picture's seed, alone, redraws the third picture.
        alone = await bot_rig.wait_result(
            await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ", "seed": 102})
        )
        difference = np.abs(
            np.asarray(png_of(alone), dtype=np.int16) - np.asarray(images[2], dtype=np.int16)
        )
        assert difference.max() <= 2

        # 🔁 on the set makes a new set of four, for whoever reacted.
        bob = fake_discord.bob
        await fake_discord.react(bob, result.channel_id, result.id, REGENERATE_EMOJI)

        def second() -> list[FakeMessage]:
            return [
                m
                for m in fake_discord.bot_messages(result.channel_id)
                if m.message_reference
                and int(m.message_reference["message_id"]) == result.id
                and m.attachments
                and m.embeds
            ]

        await fake_discord.wait_until(second, 30)
        (again,) = second()
        assert len(again.attachments) == 4
        (child,) = await bot.store.jobs.recent_for_user(bob.id)
        assert child.images == 4
        assert (await bot.store.limits.quota(fake_discord.guild.id, bob.id)).used == 4


async def test_count_over_what_is_left_is_refused_whole_saying_how_many_remain(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        alice = fake_discord.alice
        await bot.store.limits.set_user(
            fake_discord.guild.id, alice.id, 3, "day", actor_id=fake_discord.owner.id
        )
        refused = await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ", "count": 4})
        (followup,) = await refused.wait_followups(1)
        assert followup.ephemeral
        assert followup.content.startswith(
            "You asked for 4 images but have only 3 images left per day."
        )
        assert await bot.store.jobs.recent_for_user(alice.id) == []
        # Two of three used: one left, in the singular.
        await bot_rig.wait_result(
            await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ", "count": 2})
        )
        refused = await fake_discord.invoke(
            "pokemon", {"prompt": "ピカチュウ", "count": 2}, locale="ja"
        )
        (followup,) = await refused.wait_followups(1)
        assert "2枚の画像を頼みましたが、1日あたり残りは1枚の画像です。" in followup.content
        quota = await bot.store.limits.quota(fake_discord.guild.id, alice.id)
        assert (quota.used, quota.remaining) == (2, 1)


# ---- translation -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def translator(tmp_path_factory: pytest.TempPathFactory) -> MarianTranslator:
    return load_translator(build_tiny_marian(tmp_path_factory.mktemp("tiny-marian")))


@pytest.fixture
def translating_rig(bot_rig: BotRig, tiny_engine: Any, translator: MarianTranslator) -> BotRig:
    """The rig with an engine over the same loaded modules and the tiny translator."""
    engine = Engine(
        tiny_engine.pipe,
        tiny_engine.tokenizer,
        device="cpu",
        dtype=tiny_engine.dtype,
        safety_checker=False,
        model=tiny_engine.model,
        translator=translator,
    )
    bot_rig.engine = GatedEngine(engine)
    return bot_rig


async def test_english_prompt_is_drawn_from_its_translation_shown_stored_and_reused_by_regen(
    translating_rig: BotRig, fake_discord: FakeDiscord, translator: MarianTranslator
) -> None:
    japanese, japanese_negative = translator.translate(ENGLISH), translator.translate(NEGATIVE)
    async with translating_rig.run() as bot:
        record = await fake_discord.invoke(
            "pokemon", {"prompt": ENGLISH, "negative": NEGATIVE, "seed": 5}
        )
        result = await delivered(translating_rig, record)
        assert field(result, "Translated from English") == japanese
        assert field(result, "Negative prompt, translated from English") == japanese_negative
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        assert (job.request["prompt"], job.request["translate"]) == (ENGLISH, True)
        assert job.outcome is not None
        assert (job.outcome["prompt_used"], job.outcome["negative_used"]) == (
            japanese,
            japanese_negative,
        )

        # 🔁 draws from the stored Japanese, not translated again.
        bob = fake_discord.bob
        await fake_discord.react(bob, result.channel_id, result.id, REGENERATE_EMOJI)
        await fake_discord.wait_until(
            lambda: any(
                m.attachments and m.embeds and m.message_reference
                for m in fake_discord.bot_messages(result.channel_id)
            ),
            30,
        )
        (child,) = await bot.store.jobs.recent_for_user(bob.id)
        assert (child.request["prompt"], child.request["negative_prompt"]) == (
            japanese,
            japanese_negative,
        )
        assert child.request["translate"] is False

        # The stored Japanese with the same seed, untranslated, is the same picture.
        again = await translating_rig.wait_result(
            await fake_discord.invoke(
                "pokemon",
                {"prompt": japanese, "negative": japanese_negative, "seed": 5, "translate": "off"},
                user=fake_discord.moderator,
            )
        )
        assert again.attachments[0].data == result.attachments[0].data
        assert field(again, "Translated from English") is None


async def test_a_translation_holding_a_blocked_word_is_refused_privately_and_not_posted(
    translating_rig: BotRig, fake_discord: FakeDiscord, translator: MarianTranslator
) -> None:
    # A word the server blocked: in the Japanese the English becomes, not in what was typed.
    word = translator.translate(ENGLISH)[:20]
    assert blocked_word([translator.translate(ENGLISH)], [word]) == word
    assert blocked_word([ENGLISH], [word]) is None
    async with translating_rig.run() as bot:
        assert await bot.store.blocklist.add(
            fake_discord.guild.id, word, actor_id=fake_discord.owner.id
        )
        record = await fake_discord.invoke("pokemon", {"prompt": ENGLISH, "seed": 5})
        (followup,) = await record.wait_followups(1)
        assert followup.ephemeral
        assert followup.content == t("error.prompt_blocked", "en")
        assert word not in followup.content
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        assert (job.state, job.error_code, job.fault) == ("failed", "prompt_blocked", "rejected")
        assert translating_rig.engine.calls == 1  # drawn (translation happens there) ...
        assert not [m for m in fake_discord.bot_messages() if m.attachments]  # ... not posted
        quota = await bot.store.limits.quota(fake_discord.guild.id, fake_discord.alice.id)
        assert quota.used == 0


async def test_translate_off_passes_english_through_without_a_note(
    translating_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with translating_rig.run() as bot:
        record = await fake_discord.invoke("pokemon", {"prompt": ENGLISH, "translate": "off"})
        result = await delivered(translating_rig, record)
        assert field(result, "Translated from English") is None
        assert field(result, "⚠️") is None
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        assert job.outcome is not None
        assert job.outcome["prompt_used"] == ENGLISH


async def test_without_a_translation_model_english_is_drawn_as_typed_says_so_and_is_not_counted(
    bot_rig: BotRig, fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    # The rig's engine has no translator: what a model that failed to load leaves behind.
    async with bot_rig.run() as bot:
        record = await fake_discord.invoke("pokemon", {"prompt": ENGLISH}, locale="ja")
        result = await delivered(bot_rig, record)
        assert field(result, "⚠️") == t("pokemon.untranslated", "ja")
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        assert (job.state, job.fault) == ("done", "ours")
        quota = await bot.store.limits.quota(fake_discord.guild.id, fake_discord.alice.id)
        assert quota.used == 0  # our failure to translate is not the user's to pay for
        # The result's quota line already says so.
        assert field(result, t("pokemon.field_quota", "ja")) == quota_text(quota, "ja")
        # Japanese needs no translation: it counts as always.
        await delivered(bot_rig, await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ"}))
        quota = await bot.store.limits.quota(fake_discord.guild.id, fake_discord.alice.id)
        assert quota.used == 1


OPTION = re.compile(r" (?=(?:prompt|negative|seed|steps|guidance|size|count|translate):)")


async def test_details_line_of_a_translated_landscape_set_redraws_the_same_pictures(
    translating_rig: BotRig, fake_discord: FakeDiscord, translator: MarianTranslator
) -> None:
    async with translating_rig.run() as bot:
        first = await delivered(
            translating_rig,
            await fake_discord.invoke(
                "pokemon", {"prompt": ENGLISH, "seed": 9, "size": "landscape", "count": 2}
            ),
        )
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        press = await fake_discord.press(first, custom_id("info", job.id), user=fake_discord.bob)
        (followup,) = await press.wait_followups(1)
        line = re.search(r"```\n/pokemon (.*)\n```", followup.content)
        assert line is not None
        options: dict[str, object] = dict(part.split(":", 1) for part in OPTION.split(line[1]))
        assert options == {
            "prompt": translator.translate(ENGLISH),  # what the model got: no translation needed
            "seed": "9",
            "steps": "3",
            "guidance": "7.5",
            "size": "landscape",
            "count": "2",
        }
        typed = {
            name: int(value) if name in ("seed", "steps", "count") else value
            for name, value in options.items()
            if name != "guidance"
        }
        again = await delivered(
            translating_rig, await fake_discord.invoke("pokemon", typed, user=fake_discord.bob)
        )
        assert [a.data for a in again.attachments] == [a.data for a in first.attachments]


async def test_details_line_keeps_english_the_model_got_untranslated(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        first = await delivered(
            bot_rig, await fake_discord.invoke("pokemon", {"prompt": ENGLISH, "seed": 1})
        )
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        press = await fake_discord.press(first, custom_id("info", job.id))
        (followup,) = await press.wait_followups(1)
        assert f"/pokemon prompt:{ENGLISH} seed:1 steps:3 guidance:7.5 translate:off" in (
            followup.content
        )
