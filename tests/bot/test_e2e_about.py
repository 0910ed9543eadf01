"""`/about` end to end over the loopback Discord: a private answer that names the model's
license (CreativeML OpenRAIL-M), summarises its use restrictions, links to the full text, and
fits Discord's message and embed limits in English and in Japanese."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import pytest

from bot.client import PokemonBot
from bot.cogs.about import MODEL_LICENSE_URL
from bot.i18n import t
from tests.bot.conftest import BotRig
from tests.fakediscord import FakeDiscord, FakeMessage
from tests.fakediscord.state import iter_components

# Discord's limits (docs/DISCORD.md; discord.com/developers/docs/resources/message#embed-object).
CONTENT_MAX = 2000
EMBED_TOTAL_MAX = 6000
EMBED_TITLE_MAX = 256
EMBED_DESCRIPTION_MAX = 4096
EMBED_FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
BUTTON_LABEL_MAX = 80


def embed_text_length(embed: dict[str, Any]) -> int:
    """What counts against the 6,000 characters: title, description, field names and values,
    footer text and author name."""
    fields = embed.get("fields") or []
    return sum(
        len(text or "")
        for text in [
            embed.get("title"),
            embed.get("description"),
            (embed.get("footer") or {}).get("text"),
            (embed.get("author") or {}).get("name"),
            *(f["name"] for f in fields),
            *(f["value"] for f in fields),
        ]
    )


async def about_reply(fake: FakeDiscord, locale: str) -> FakeMessage:
    record = await fake.invoke("about", user=fake.alice, locale=locale)
    callback = await record.wait_response()
    assert callback.type == 4, "an immediate answer: nothing slow happens before it"
    assert callback.ephemeral, "/about is answered privately"
    assert record.rejected == []
    message = record.original_message
    assert message is not None
    return message


@pytest.mark.parametrize("locale", ["en", "ja"])
async def test_about_names_the_models_license_links_to_it_and_fits_discords_limits(
    fake_discord: FakeDiscord, pokemon_bot: PokemonBot, locale: str
) -> None:
    message = await about_reply(fake_discord, locale)
    assert len(message.content) <= CONTENT_MAX
    [embed] = message.embeds
    text = "\n".join(
        [embed["title"], embed["description"]]
        + [f"{f['name']}\n{f['value']}" for f in embed["fields"]]
    )
    assert "CreativeML OpenRAIL-M" in text
    assert MODEL_LICENSE_URL in text
    # The use restrictions, in the user's language, one line each.
    restrictions = t("about.restrictions.value", locale)
    assert restrictions in text
    assert restrictions.count("\n") >= 9
    assert "BSD-3-Clause" in text  # the upscaler's license
    assert "MIT" in text  # the bot's own
    assert version("pokemon-bot") in text
    assert "/privacy" in text
    # The link button opens the full text.
    [button] = [c for c in iter_components(message.components) if c.get("type") == 2]
    assert button["url"] == MODEL_LICENSE_URL
    assert button["label"] == t("about.license_button", locale)
    assert len(button["label"]) <= BUTTON_LABEL_MAX
    # Discord's embed limits.
    assert len(embed["title"]) <= EMBED_TITLE_MAX
    assert len(embed["description"]) <= EMBED_DESCRIPTION_MAX
    assert len(embed["fields"]) <= EMBED_FIELDS_MAX
    for field in embed["fields"]:
        assert 0 < len(field["name"]) <= FIELD_NAME_MAX, field["name"]
        assert 0 < len(field["value"]) <= FIELD_VALUE_MAX, field["name"]
    assert embed_text_length(embed) <= EMBED_TOTAL_MAX


async def test_about_is_in_japanese_for_japanese_users_and_says_the_retention(
    fake_discord: FakeDiscord, pokemon_bot: PokemonBot
) -> None:
    message = await about_reply(fake_discord, "ja")
    [embed] = message.embeds
    assert embed["title"] == t("about.title", "ja")
    days = t("count.days", "ja", count=pokemon_bot.settings.pokemon_retention_days)
    [privacy] = [f for f in embed["fields"] if f["name"] == t("about.privacy.name", "ja")]
    assert days in privacy["value"]


async def test_about_is_registered_with_a_localized_description(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run():
        pass
    [about] = [c for c in fake_discord.registered_commands() if c["name"] == "about"]
    assert about["description"] == t("cmd.about.description", "en")
    assert about["description_localizations"]["ja"] == t("cmd.about.description", "ja")
