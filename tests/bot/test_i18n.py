"""The string catalog: both languages complete, every key the code uses exists, and every slash
command and option has a real description in English and in Japanese."""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.client import EXTENSIONS, PokemonBot
from bot.i18n import LANGUAGES, catalog, t
from bot.settings import Settings
from bot.translator import CatalogTranslator

ROOT = Path(__file__).resolve().parents[2]
# Discord's rule for command and option names (lower case where the script has case).
NAME_RULE = re.compile(r"^[-_\w\u0900-\u097f\u0e00-\u0e7f]{1,32}$")
KEY_IN_CODE = re.compile(r"""(?:\bt|UserFacingError)\(\s*["']([a-z][a-z0-9_.]+)["']""")
SUBCOMMAND, GROUP = 1, 2


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_languages_have_the_same_keys() -> None:
    en, ja = catalog("en"), catalog("ja")
    assert sorted(set(en) - set(ja)) == []
    assert sorted(set(ja) - set(en)) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_entry_is_empty(language: str) -> None:
    empty = [key for key, value in catalog(language).items() if not value.strip()]
    assert empty == []


def test_both_languages_use_the_same_placeholders() -> None:
    en, ja = catalog("en"), catalog("ja")
    mismatched = {
        key: (sorted(placeholders(en[key])), sorted(placeholders(ja[key])))
        for key in en
        if key in ja and placeholders(en[key]) != placeholders(ja[key])
    }
    assert mismatched == {}


def test_japanese_entries_are_translated() -> None:
    en, ja = catalog("en"), catalog("ja")
    # Names of commands may stay ASCII; everything a user reads must be Japanese.
    same = [
        key
        for key in en
        if not key.endswith(".name")
        and ja.get(key) == en[key]
        and re.search("[A-Za-z]{3}", en[key])
    ]
    assert same == []


def test_every_literal_key_in_the_code_exists() -> None:
    used: dict[str, str] = {}
    for path in sorted((ROOT / "bot").rglob("*.py")):
        for key in KEY_IN_CODE.findall(path.read_text("utf-8")):
            used.setdefault(key, str(path.relative_to(ROOT)))
    assert used, "the scan found no keys: the pattern is broken"
    missing = {key: where for key, where in used.items() if key not in catalog("en")}
    assert missing == {}


def test_japanese_is_chosen_for_ja_and_english_otherwise() -> None:
    assert t("error.prompt_empty", discord.Locale.japanese) == catalog("ja")["error.prompt_empty"]
    assert (
        t("error.prompt_empty", discord.Locale.american_english)
        == catalog("en")["error.prompt_empty"]
    )
    assert t("error.prompt_empty", discord.Locale.french) == catalog("en")["error.prompt_empty"]


async def _payloads() -> list[dict[str, Any]]:
    settings = Settings(_env_file=None, discord_token=None)
    bot = PokemonBot(settings=settings, store=None, generator=None)  # type: ignore[arg-type]
    try:
        await bot.tree.set_translator(CatalogTranslator())
        for name in EXTENSIONS:
            await bot.load_extension(name)
        translator = bot.tree.translator
        assert translator is not None
        return [
            await command.get_translated_payload(bot.tree, translator)
            for command in bot.tree.get_commands()
        ]
    finally:
        await bot.close()


def _walk(payload: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    here = f"{path} {payload['name']}".strip()
    found = [(here, payload)]
    for option in payload.get("options", []):
        if option.get("type") in (SUBCOMMAND, GROUP):
            found += _walk(option, here)
        else:
            found.append((f"{here} {option['name']}", option))
    return found


async def test_every_command_and_option_has_english_and_japanese_descriptions() -> None:
    payloads = await _payloads()
    names = {p["name"] for p in payloads}
    assert {"pokemon", "ratelimit", "usage", "stats"} <= names
    problems: list[str] = []
    for top in payloads:
        if top.get("type", 1) != 1:  # context menus have no description
            continue
        for where, item in _walk(top):
            english = item.get("description", "")
            japanese = (item.get("description_localizations") or {}).get("ja", "")
            if len(english.strip()) < 8 or english.strip() in {"…", "...", item["name"]}:
                problems.append(f"{where}: English description {english!r}")
            if not japanese.strip():
                problems.append(f"{where}: no Japanese description")
            elif japanese == english:
                problems.append(f"{where}: Japanese description is the English one")
            if len(english) > 100 or len(japanese) > 100:
                problems.append(f"{where}: description over Discord's 100 characters")
            for language, name in [
                ("default", item["name"]),
                *((item.get("name_localizations") or {}).items()),
            ]:
                if not NAME_RULE.match(name) or name != name.lower():
                    problems.append(f"{where}: {language} name {name!r} breaks Discord's rule")
    assert problems == []


async def test_pokemon_command_names_are_localized_in_japanese() -> None:
    (pokemon,) = [p for p in await _payloads() if p["name"] == "pokemon"]
    assert pokemon["name_localizations"] == {"ja": "ポケモン"}
    options = {o["name"]: o for o in pokemon["options"]}
    assert list(options) == ["prompt", "negative", "seed", "steps", "guidance"]
    assert options["prompt"]["name_localizations"] == {"ja": "プロンプト"}
    assert options["prompt"]["required"] is True
    assert options["steps"]["min_value"] == 1
    assert options["guidance"]["max_value"] == 20.0
