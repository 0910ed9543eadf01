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
from bot.i18n import LANGUAGES, PLURAL_FORMS, Entry, catalog, forms, t
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
    empty = [
        key
        for key, value in catalog(language).items()
        if not all(text.strip() for text in forms(value).values())
    ]
    assert empty == []


def test_both_languages_use_the_same_placeholders() -> None:
    en, ja = catalog("en"), catalog("ja")
    mismatched = {
        key: (sorted(entry_placeholders(en[key])), sorted(entry_placeholders(ja[key])))
        for key in en
        if key in ja and entry_placeholders(en[key]) != entry_placeholders(ja[key])
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
        and re.search("[A-Za-z]{3}", str(en[key]))
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
    assert list(options) == [
        "prompt",
        "negative",
        "seed",
        "steps",
        "guidance",
        "size",
        "count",
        "translate",
        "image",
        "strength",
    ]
    assert options["prompt"]["name_localizations"] == {"ja": "プロンプト"}
    assert options["prompt"]["required"] is True
    assert options["steps"]["min_value"] == 1
    assert options["guidance"]["max_value"] == 20.0
    assert (options["count"]["min_value"], options["count"]["max_value"]) == (1, 4)
    assert (options["strength"]["min_value"], options["strength"]["max_value"]) == (0.1, 0.9)
    assert options["image"]["type"] == 11  # an attachment
    assert [(c["value"], c["name_localizations"]) for c in options["translate"]["choices"]] == [
        ("auto", {"ja": "自動"}),
        ("off", {"ja": "しない"}),
    ]
    assert options["size"]["name_localizations"] == {"ja": "サイズ"}


def entry_placeholders(entry: Entry) -> set[str]:
    """Every placeholder any form of an entry uses."""
    return set().union(*(placeholders(text) for text in forms(entry).values()))


def test_plural_entries_have_exactly_the_forms_of_their_language() -> None:
    problems: list[str] = []
    for language in LANGUAGES:
        for key, entry in catalog(language).items():
            if isinstance(entry, str):
                continue
            if language == "ja":
                problems.append(f"ja {key}: Japanese has one form; use a plain string")
            if set(forms(entry)) != set(PLURAL_FORMS[language]):
                problems.append(f"{language} {key}: forms {sorted(forms(entry))}")
            selector = entry.get("plural", "count")
            if selector not in entry_placeholders(entry) and selector != "count":
                problems.append(f"{language} {key}: counted by {selector!r}, which it never shows")
    assert problems == []


# Nouns the English catalog counts; "1 <plural>" or "2 <singular>" is a wrong form.
NOUNS = {
    "picture": "pictures",
    "image": "images",
    "user": "users",
    "job": "jobs",
    "day": "days",
    "character": "characters",
    "hour": "hours",
    "minute": "minutes",
    "second": "seconds",
    "step": "steps",
}
WRONG_FORM = {
    1: re.compile(r"\b1(?:\*\*)? (" + "|".join(NOUNS.values()) + r")\b"),
    2: re.compile(r"\b2(?:\*\*)? (" + "|".join(NOUNS) + r")\b"),
}


def render_all(language: str, number: int) -> dict[str, str]:
    """Every message rendered with every parameter set to `number`; plural pieces, as the
    code passes them, rendered with the same number."""
    rendered: dict[str, str] = {}
    for key, entry in catalog(language).items():
        params: dict[str, object] = dict.fromkeys(entry_placeholders(entry), number)
        params.setdefault("count", number)
        if isinstance(entry, dict):
            params.setdefault(entry.get("plural", "count"), number)
        if key == "stats.summary":
            params.update(
                window=t("stats.window", language, count=number),
                images=t("count.images", language, count=number),
                users=t("count.users", language, count=number),
                jobs=t("count.jobs", language, count=number),
            )
        rendered[key] = t(key, language, **params)
    return rendered


@pytest.mark.parametrize("number", [1, 2])
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_renders_with_one_and_two_in_the_right_form(
    language: str, number: int
) -> None:
    rendered = render_all(language, number)
    assert len(rendered) == len(catalog(language))
    wrong = {key: text for key, text in rendered.items() if WRONG_FORM[number].search(text)}
    assert wrong == {}


def test_english_counts_one_and_many_differently() -> None:
    assert t("error.pending_cap", "en", max=1).startswith("You already have 1 picture waiting.")
    assert t("error.pending_cap", "en", max=2).startswith("You already have 2 pictures waiting.")
    assert t("ratelimit.value", "en", images=1, period="hour") == "1 picture per hour"
    assert t("count.users", "en", count=0) == "0 users"
    assert t("stats.window", "ja", count=1) == t("stats.window", "ja", count=2).replace("2", "1")


def test_the_wrong_form_check_catches_what_it_is_for() -> None:
    assert WRONG_FORM[1].search("You have 1 pictures waiting")
    assert WRONG_FORM[1].search("made **1** images")  # the number in bold, the noun not
    assert WRONG_FORM[2].search("by 2 user (")
    assert not WRONG_FORM[1].search("1 picture per hour")


def test_a_plural_entry_without_its_count_is_a_clear_key_error() -> None:
    with pytest.raises(KeyError, match="max"):
        t("error.pending_cap", "en")
