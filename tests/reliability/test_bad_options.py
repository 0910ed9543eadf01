"""Out-of-range and mistyped options of `/ratelimit` and `/stats`, sent as a modified client
could (`strict=False`: Discord's own client enforces the declared ranges, discord.py does not):
each is refused with one localized, ephemeral message, nothing is stored, and the log has no
traceback and no error id. (`/pokemon`'s table is in `test_bad_inputs.py`.)"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.client import PokemonBot
from bot.cogs.ratelimit import MAX_IMAGES
from bot.cogs.stats import MAX_DAYS
from bot.i18n import t
from tests.fakediscord import FakeDiscord, InteractionRecord, WireValue

IMAGES = {"min": 0, "max": MAX_IMAGES}
DAYS = {"min": 1, "max": MAX_DAYS}

CASES: list[tuple[str, str, dict[str, Any], str, dict[str, Any]]] = [
    ("set-minus-one", "ratelimit set", {"images": -1}, "error.images_range", IMAGES),
    ("set-2-to-63", "ratelimit set", {"images": 2**63}, "error.images_range", IMAGES),
    ("set-10-to-12", "ratelimit set", {"images": 10**12}, "error.images_range", IMAGES),
    ("set-one-over", "ratelimit set", {"images": MAX_IMAGES + 1}, "error.images_range", IMAGES),
    ("set-as-string", "ratelimit set", {"images": WireValue("5")}, "error.invalid_option", {}),
    ("set-as-bool", "ratelimit set", {"images": WireValue(True)}, "error.invalid_option", {}),
    ("set-as-float", "ratelimit set", {"images": WireValue(2.5)}, "error.invalid_option", {}),
    ("set-unknown-period", "ratelimit set", {"per": "week"}, "error.invalid_option", {}),
    ("default-minus-one", "ratelimit default", {"images": -1}, "error.images_range", IMAGES),
    ("default-2-to-63", "ratelimit default", {"images": 2**63}, "error.images_range", IMAGES),
    ("stats-zero", "stats", {"days": 0}, "error.days_range", DAYS),
    ("stats-negative", "stats", {"days": -3}, "error.days_range", DAYS),
    ("stats-100000", "stats", {"days": 100_000}, "error.days_range", DAYS),
    ("stats-as-string", "stats", {"days": WireValue("7")}, "error.invalid_option", {}),
]


def options_for(fake: FakeDiscord, command: str, given: dict[str, Any]) -> dict[str, Any]:
    if command == "ratelimit set":
        return {"user": fake.bob, "images": 3, "per": "day", **given}
    if command == "ratelimit default":
        return {"images": 3, "per": "day", **given}
    return given


async def answer_text(record: InteractionRecord) -> tuple[str, bool]:
    """The answer, whether sent at once (4) or after a defer (5): then the first followup
    fills the deferred response (`/stats`), or comes as a new message (a refusal)."""
    callback = await record.wait_response()
    if callback.type == 4:
        assert callback.data is not None
        return str(callback.data.get("content")), callback.ephemeral

    def answered(r: InteractionRecord) -> bool:
        original = r.original_message
        return bool(r.followup_ids) or (original is not None and not original.loading)

    await record.wait_until(answered)
    message = record.followups[0] if record.followup_ids else record.original_message
    assert message is not None
    return message.content, message.ephemeral


def assert_clean_log(caplog: pytest.LogCaptureFixture) -> None:
    """No traceback and no unexpected-error id: the refusal was expected, not a bug."""
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    assert [r.getMessage() for r in caplog.records if "error id" in r.getMessage()] == []


@pytest.mark.parametrize("locale", ["en-US", "ja"])
@pytest.mark.parametrize(
    ("command", "given", "key", "params"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_an_out_of_range_or_mistyped_option_is_refused_in_the_users_language(
    fake_discord: FakeDiscord,
    pokemon_bot: PokemonBot,
    caplog: pytest.LogCaptureFixture,
    locale: str,
    command: str,
    given: dict[str, Any],
    key: str,
    params: dict[str, Any],
) -> None:
    fake = fake_discord
    caplog.set_level(logging.INFO)
    record = await fake.invoke(
        command,
        options_for(fake, command, given),
        user=fake.moderator,
        locale=locale,
        strict=False,
    )
    text, ephemeral = await answer_text(record)

    language = "ja" if locale == "ja" else "en"
    if key == "error.invalid_option":
        assert text.startswith(t(key, language, value="")), text
    else:
        assert text == t(key, language, **params)
    assert ephemeral
    assert_clean_log(caplog)
    limits = pokemon_bot.store.limits
    assert await limits.list_user_limits(fake.guild.id) == []
    assert (await limits.guild_default(fake.guild.id)).source != "guild"
    assert await limits.audit(fake.guild.id) == []


async def test_the_bounds_themselves_are_accepted(
    fake_discord: FakeDiscord, pokemon_bot: PokemonBot, caplog: pytest.LogCaptureFixture
) -> None:
    fake = fake_discord
    caplog.set_level(logging.INFO)
    for images in (0, MAX_IMAGES):
        record = await fake.invoke(
            "ratelimit set",
            options_for(fake, "ratelimit set", {"images": images}),
            user=fake.moderator,
        )
        await answer_text(record)
    for days in (1, MAX_DAYS):
        record = await fake.invoke("stats", {"days": days}, user=fake.moderator)
        text, _ = await answer_text(record)
        assert text.splitlines()[0] == t("stats.empty", "en", days=days)
    (limit,) = await pokemon_bot.store.limits.list_user_limits(fake.guild.id)
    assert limit.images == MAX_IMAGES
    assert_clean_log(caplog)


NAMESPACE_CRASHES = [
    ("pokemon", {"prompt": "ピカチュウ", "guidance": WireValue("abc")}),
    ("ratelimit set", {"user": WireValue("abc"), "images": 3, "per": "day"}),
]


@pytest.mark.parametrize(("command", "options"), NAMESPACE_CRASHES, ids=["guidance", "user"])
async def test_a_value_discord_py_cannot_convert_is_refused_before_the_command(
    fake_discord: FakeDiscord,
    pokemon_bot: PokemonBot,
    caplog: pytest.LogCaptureFixture,
    command: str,
    options: dict[str, Any],
) -> None:
    fake = fake_discord
    caplog.set_level(logging.INFO)
    record = await fake.invoke(command, options, user=fake.moderator, strict=False)
    await record.wait_response(within=3.0)
    text, ephemeral = await answer_text(record)
    assert text.startswith(t("error.invalid_option", "en", value="")), text
    assert ephemeral
    assert_clean_log(caplog)
    assert await pokemon_bot.store.jobs.pending() == []
