"""The one string catalog: `bot/locale/en.json` and `bot/locale/ja.json`, same keys in both.

Replies are Japanese for the `ja` locale and English otherwise. Keys are namespaced by
feature (`pokemon.*`, `regen.*`, `ratelimit.*`, `usage.*`, `stats.*`, `error.*`, ...), and
placeholders use `str.format` names: `t("error.queue_full", "ja", size=32)`.

Plural forms. A value is a string, or an object of plural forms when the sentence depends on
a number (English "1 picture" / "2 pictures"):

    "error.pending_cap": {"plural": "max", "one": "… {max} picture …", "other": "… {max} pictures …"}

The form is chosen by the parameter that `plural` names (`count` when `plural` is absent),
with each language's rule: English has `one` (the integer 1) and `other` (everything else);
Japanese has one form, so its values stay plain strings (an object would use `other`). A
sentence that counts two things is built from counted pieces, each a plural entry selected
by its own `count` (`stats.summary` takes `t("count.images", locale, count=n)` and others).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

LANGUAGES = ("en", "ja")
# Which plural forms a language distinguishes (CLDR cardinal categories used by the catalog).
PLURAL_FORMS: dict[str, tuple[str, ...]] = {"en": ("one", "other"), "ja": ("other",)}
PLURAL_SELECTOR = "plural"
DEFAULT_COUNT = "count"

Entry = str | dict[str, str]


@cache
def catalog(language: str) -> dict[str, Entry]:
    text = resources.files("bot").joinpath("locale", f"{language}.json").read_text("utf-8")
    return json.loads(text)


def language_of(locale: object) -> str:
    """`discord.Locale.japanese` / `"ja"` → `"ja"`; anything else → `"en"`."""
    value = str(getattr(locale, "value", locale) or "")
    return "ja" if value.lower().startswith("ja") else "en"


def plural_form(language: str, number: object) -> str:
    """The plural category of `number` in `language`: `one` or `other`."""
    if "one" in PLURAL_FORMS.get(language, ()) and _is_one(number):
        return "one"
    return "other"


def _is_one(number: object) -> bool:
    return isinstance(number, int) and not isinstance(number, bool) and number == 1


def forms(entry: Entry) -> dict[str, str]:
    """The texts of an entry by plural category (a plain string is the `other` form)."""
    if isinstance(entry, str):
        return {"other": entry}
    return {name: text for name, text in entry.items() if name != PLURAL_SELECTOR}


def template(key: str, language: str, params: dict[str, object]) -> str:
    """The text of `key` in `language` (English when missing), in the form `params` need."""
    entry = catalog(language).get(key)
    if entry is None:
        language, entry = "en", catalog("en")[key]
    if isinstance(entry, str):
        return entry
    selector = entry.get(PLURAL_SELECTOR, DEFAULT_COUNT)
    if selector not in params:
        raise KeyError(f"{key} is counted by {selector!r}, which was not given")
    by_form = forms(entry)
    return by_form.get(plural_form(language, params[selector])) or by_form["other"]


def t(key: str, locale: object = "en", /, **params: object) -> str:
    """The text for `key` in the user's language, formatted with `params`."""
    text = template(key, language_of(locale), params)
    return text.format(**params) if params else text
