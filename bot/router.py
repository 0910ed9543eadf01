"""The one router for every component interaction: each press of anything the bot ever put
on a message gets its callback at once, and an answer.

`PokemonBot.on_interaction` hands every component (and modal) interaction here. discord.py's
own view store answers none of them: the bot registers no `DynamicItem` and sends only views
that are not dispatchable (`bot.buttons.Buttons`), so a press is answered exactly once, here.

1. `bot.custom_ids.parse` reads the `custom_id`: today's formats and the older ones whose
   meaning is known.
2. An id it does not know, or a malformed one, gets a private, localized "this button has
   expired, use /pokemon" at once (CHANNEL_MESSAGE_WITH_SOURCE, ephemeral).
3. A known press is first acknowledged without a visible change (DEFERRED_UPDATE_MESSAGE),
   before any database or Discord call, so well inside Discord's 3 s; its handler
   (`bot.presses` for a job's buttons and `/privacy`, `bot.settings_ui`, `bot.history_ui`)
   then answers with followups or an edit of the pressed message. A press that opens a form
   (`/settings`' negative prompt) is answered by the form itself, at once.
4. A handler that fails (a database busy or full, a bug) is answered as a command would be
   (`bot.tree.answer_error`: "storage unavailable", or an error id that the log also has).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from bot.custom_ids import ForgetPress, HistoryPress, JobPress, Press, SettingsPress, parse
from bot.history_ui import press_history
from bot.presses import expired_text, forget, press_job_button
from bot.settings_ui import press_settings
from bot.tree import answer_error

if TYPE_CHECKING:
    from bot.client import PokemonBot

log = logging.getLogger(__name__)

ROUTED = (discord.InteractionType.component, discord.InteractionType.modal_submit)


def custom_id_of(interaction: discord.Interaction[Any]) -> str | None:
    data: Any = interaction.data or {}
    found = data.get("custom_id")
    return found if isinstance(found, str) else None


def describe(press: Press) -> str:
    """How the log names a press: `button cancel on job=42`, `button forget of user=7`."""
    if isinstance(press, JobPress):
        return f"button {press.action} on job={press.job_id}"
    return (
        f"button {press.action} of user={press.user_id if press.user_id is not None else 'presser'}"
    )


async def _handle(interaction: discord.Interaction[PokemonBot], press: Press) -> None:
    """The press's handler: each kind of press has its own module."""
    match press:
        case JobPress():
            await press_job_button(interaction, press)
        case ForgetPress():
            await forget(interaction, press)
        case SettingsPress():
            await press_settings(interaction, press)
        case HistoryPress():
            await press_history(interaction, press)


async def route(interaction: discord.Interaction[PokemonBot]) -> None:
    """Answer one interaction if it is a component's (or a modal's); others are not ours."""
    if interaction.type not in ROUTED:
        return
    custom_id = custom_id_of(interaction)
    press = parse(custom_id) if custom_id is not None else None
    if press is None:
        log.info(
            "an unknown or expired component %r was used by user=%s", custom_id, interaction.user.id
        )
        await _answer(interaction, expired_text(interaction.locale))
        return
    where = describe(press)
    if not press.opens_form:  # a form (modal) is itself the press's first answer
        try:
            await interaction.response.defer()  # no visible change; answers are followups
        except discord.HTTPException as exc:
            log.warning("%s: could not acknowledge the press: %s", where, exc)
            return
    try:
        await _handle(interaction, press)
    except discord.HTTPException as exc:
        log.warning("%s: %s", where, exc)
    except Exception as exc:
        # The database busy or full, or a bug: the presser gets the same private answer a
        # command would (`bot.tree.answer_error`), never silence.
        await answer_error(interaction, exc, where)


async def _answer(interaction: discord.Interaction[Any], text: str) -> None:
    try:
        await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException as exc:
        log.warning("could not answer interaction %s: %s", interaction.id, exc)
