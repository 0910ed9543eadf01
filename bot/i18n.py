"""The one string catalog: `bot/locale/en.json` and `bot/locale/ja.json`, same keys in both.

Replies are Japanese for the `ja` locale and English otherwise. Keys are namespaced by
feature (`pokemon.*`, `regen.*`, `ratelimit.*`, `usage.*`, `stats.*`, `error.*`, ...), and
placeholders use `str.format` names: `t("error.queue_full", "ja", size=32)`.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

LANGUAGES = ("en", "ja")


@cache
def catalog(language: str) -> dict[str, str]:
    text = resources.files("bot").joinpath("locale", f"{language}.json").read_text("utf-8")
    return json.loads(text)


def language_of(locale: object) -> str:
    """`discord.Locale.japanese` / `"ja"` → `"ja"`; anything else → `"en"`."""
    value = str(getattr(locale, "value", locale) or "")
    return "ja" if value.lower().startswith("ja") else "en"


def t(key: str, locale: object = "en", /, **params: object) -> str:
    """The text for `key` in the user's language, formatted with `params`."""
    language = language_of(locale)
    template = catalog(language).get(key) or catalog("en")[key]
    return template.format(**params) if params else template
