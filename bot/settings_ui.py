"""`/settings`: one private message where a user sets their own defaults for `/pokemon`.

Three selects (size, pictures per call, translation), a button that opens a form for a default
negative prompt, and a reset button. Each change is saved at once and the message redrawn with
what is stored now. Every item's `custom_id` names the user (`bot.custom_ids`), so the message
works after a restart and only for that user; `bot.router` hands the presses here.

What the defaults mean when `/pokemon` runs is `bot.user_defaults.apply_defaults`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.buttons import Buttons
from bot.custom_ids import SettingsPress, negative_form_id, settings_id
from bot.errors import UserFacingError
from bot.i18n import language_of, t
from bot.messaging import escape_user_text, send_ephemeral
from bot.validation import MAX_NEGATIVE_CHARS, SIZES, TRANSLATE_CHOICES, text_option
from generation.types import MAX_COUNT
from storage import UserDefaults

if TYPE_CHECKING:
    from bot.client import PokemonBot
    from bot.settings import Settings

    Interaction = discord.Interaction[PokemonBot]

log = logging.getLogger(__name__)

SERVER = "server"  # a select's "the server's default" option
NEGATIVE_FIELD = "negative"  # the form's text input
NEGATIVE_SHOWN = 300  # characters of the default negative prompt shown in the message


# ---- what the message shows -----------------------------------------------------------------


def _translate_value(defaults: UserDefaults) -> str | None:
    if defaults.translate is None:
        return None
    return "auto" if defaults.translate else "off"


def settings_text(defaults: UserDefaults, settings: Settings, locale: str) -> str:
    """The message: each default, the server's where the user set none."""

    def shown(kind: str, value: object | None, server: object) -> str:
        if value is None:
            return t("settings.server_value", locale, value=_label(kind, server, locale))
        return f"**{_label(kind, value, locale)}**"

    negative = (
        f"**{escape_user_text(defaults.negative, NEGATIVE_SHOWN)}**"
        if defaults.negative
        else t("settings.none", locale)
    )
    return "\n".join(
        [
            t("settings.header", locale),
            t("settings.size", locale, value=shown("size", defaults.size, "square")),
            t("settings.count", locale, value=shown("count", defaults.count, 1)),
            t(
                "settings.translate",
                locale,
                value=shown("translate", _translate_value(defaults), settings.pokemon_translate),
            ),
            t("settings.negative", locale, value=negative),
        ]
    )


def _label(kind: str, value: object, locale: str) -> str:
    if kind == "count":
        return t("count.images", locale, count=value)
    return t(f"choice.{kind}.{value}", locale)


def settings_view(user_id: int, defaults: UserDefaults, locale: str) -> Buttons:
    """The selects and buttons of `/settings`, each naming `user_id`."""

    def select(field: str, values: list[str], current: str | None, row: int) -> Any:
        options = [
            discord.SelectOption(
                label=t("settings.option.server", locale),
                value=SERVER,
                default=current is None,
            ),
            *(
                discord.SelectOption(
                    label=_label(field, int(value) if field == "count" else value, locale),
                    value=value,
                    default=value == current,
                )
                for value in values
            ),
        ]
        return discord.ui.Select[Any](
            custom_id=settings_id(user_id, field),
            placeholder=t(f"settings.placeholder.{field}", locale),
            options=options,
            row=row,
        )

    count = None if defaults.count is None else str(defaults.count)
    return Buttons(
        select("size", list(SIZES), defaults.size, 0),
        select("count", [str(n) for n in range(1, MAX_COUNT + 1)], count, 1),
        select("translate", list(TRANSLATE_CHOICES), _translate_value(defaults), 2),
        discord.ui.Button[Any](
            style=discord.ButtonStyle.secondary,
            label=t("settings.button.negative", locale),
            custom_id=settings_id(user_id, "negative"),
            row=3,
        ),
        discord.ui.Button[Any](
            style=discord.ButtonStyle.danger,
            label=t("settings.button.reset", locale),
            custom_id=settings_id(user_id, "reset"),
            row=3,
        ),
    )


class NegativeForm(discord.ui.Modal):
    """The form for a default negative prompt, for sending only: `bot.router` answers its
    submission (so discord.py keeps nothing in memory for it)."""

    def __init__(self, user_id: int, current: str | None, locale: str) -> None:
        super().__init__(
            title=t("settings.form.title", locale), custom_id=negative_form_id(user_id)
        )
        self.add_item(
            discord.ui.TextInput[Any](
                label=t("settings.form.label", locale),
                custom_id=NEGATIVE_FIELD,
                style=discord.TextStyle.paragraph,
                default=current or None,
                required=False,
                max_length=MAX_NEGATIVE_CHARS,
            )
        )
        self.stop()  # a stopped modal is sent without being stored for dispatch


# ---- what a press does ----------------------------------------------------------------------


def chosen(interaction: Interaction) -> str | None:
    """The value picked in a select (one at most)."""
    data: Any = interaction.data or {}
    values = data.get("values")
    return values[0] if isinstance(values, list) and values and isinstance(values[0], str) else None


def submitted(interaction: Interaction, custom_id: str) -> str | None:
    """The value of text input `custom_id` in a submitted form (rows or labels)."""
    data: Any = interaction.data or {}
    pending: list[Any] = list(data.get("components") or [])
    while pending:
        item: Any = pending.pop()
        if not isinstance(item, dict):
            continue
        found: dict[str, Any] = cast("dict[str, Any]", item)
        value = found.get("value")
        if found.get("custom_id") == custom_id and isinstance(value, str):
            return value
        pending.extend(found.get("components") or [])
        if isinstance(found.get("component"), dict):
            pending.append(found["component"])
    return None


def changed(defaults: UserDefaults, field: str, value: str | None) -> UserDefaults:
    """`defaults` with `field` set from a select's `value` (SERVER: cleared). Raises
    UserFacingError for a value the select never offered."""
    if value == SERVER:
        return replace(defaults, **{field: None})
    if field == "size" and value in SIZES:
        return replace(defaults, size=value)
    if field == "count" and value is not None and value.isdigit() and 1 <= int(value) <= MAX_COUNT:
        return replace(defaults, count=int(value))
    if field == "translate" and value in TRANSLATE_CHOICES:
        return replace(defaults, translate=value == "auto")
    raise UserFacingError("error.invalid_option", value=str(value)[:50])


async def press_settings(interaction: Interaction, press: SettingsPress) -> None:
    """A select, a button or the form of `/settings` (already acknowledged, but for the
    negative prompt's button, answered here with its form)."""
    locale = language_of(interaction.locale)
    if interaction.user.id != press.user_id:
        await send_ephemeral(interaction, t("error.not_allowed", locale))
        return
    store = interaction.client.store.user_settings
    defaults = await store.get(press.user_id)
    if press.field == "negative":
        await interaction.response.send_modal(
            NegativeForm(press.user_id, defaults.negative, locale)
        )
        return
    if press.field == "reset":
        defaults = UserDefaults()
        await store.reset(press.user_id)
    elif press.field == "submit":
        text = text_option(submitted(interaction, NEGATIVE_FIELD))
        if len(text) > MAX_NEGATIVE_CHARS:
            raise UserFacingError(
                "error.negative_too_long", length=len(text), max=MAX_NEGATIVE_CHARS
            )
        defaults = await store.save(press.user_id, replace(defaults, negative=text or None))
    else:
        defaults = await store.save(
            press.user_id, changed(defaults, press.field, chosen(interaction))
        )
    log.info("user=%s changed their defaults (%s)", press.user_id, press.field)
    await interaction.edit_original_response(
        content=settings_text(defaults, interaction.client.settings, locale),
        view=settings_view(press.user_id, defaults, locale),
    )
