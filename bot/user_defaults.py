"""A user's own `/settings` defaults applied to one `/pokemon` call (pure: no Discord, no I/O).

An option typed in always wins; a default fills only an option left out; the server's
defaults apply where the user set none. A saved default that today's server settings or the
user's limit no longer allow is used as the nearest allowed value, and the call says so
(`Applied.notes`, catalog keys with their parameters): a size over POKEMON_MAX_PIXELS falls back
to square, a count over the user's whole limit to that limit. A count within the limit but over
what is left now is kept: admission refuses it as it refuses a typed one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.errors import UserFacingError
from bot.i18n import t
from bot.validation import check_dimensions, size_dimensions

if TYPE_CHECKING:
    from bot.settings import Settings
    from storage import UserDefaults

Note = tuple[str, dict[str, object]]  # a catalog key and its parameters


@dataclass(frozen=True, slots=True)
class Applied:
    """The options `/pokemon` runs with, and what had to change in the user's defaults."""

    size: str | None
    count: int | None
    translate: str | None
    negative: str | None
    notes: tuple[Note, ...] = ()


def note_text(note: Note, locale: str) -> str:
    """A note of `Applied.notes` in the user's language (a size named as /pokemon's choices)."""
    key, params = note
    if "size" in params:
        params = {**params, "size": t(f"choice.size.{params['size']}", locale)}
    return t(key, locale, **params)


def apply_defaults(
    settings: Settings,
    defaults: UserDefaults,
    *,
    size: str | None,
    count: int | None,
    translate: str | None,
    negative: str | None,
    limit_images: int | None,
) -> Applied:
    """Fill the options left out (None) from `defaults`. `limit_images`: the user's whole
    limit in this server (None: unlimited; 0: blocked, which admission refuses)."""
    notes: list[Note] = []
    if size is None and defaults.size is not None:
        size = defaults.size
        try:
            check_dimensions(settings, *size_dimensions(settings.pokemon_size, size))
        except UserFacingError:
            notes.append(("settings.note.size_not_allowed", {"size": defaults.size}))
            size = "square"
    if count is None and defaults.count is not None:
        count = defaults.count
        if limit_images is not None and 0 < limit_images < count:
            notes.append(
                ("settings.note.count_over_limit", {"count": count, "limit": limit_images})
            )
            count = limit_images
    if translate is None and defaults.translate is not None:
        translate = "auto" if defaults.translate else "off"
    if negative is None and defaults.negative:
        negative = defaults.negative
    return Applied(
        size=size, count=count, translate=translate, negative=negative, notes=tuple(notes)
    )
