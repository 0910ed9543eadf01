"""The command tree every slash-command error flows through: one ephemeral, localized answer.

Job state is never touched here: the job service settles every row it admits itself.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.errors import UserFacingError, new_error_id
from bot.i18n import t
from bot.messaging import send_ephemeral
from bot.validation import MistypedOption, mistyped_option, shown
from storage import StorageError

if TYPE_CHECKING:
    from bot.client import PokemonBot

log = logging.getLogger(__name__)


class PokemonTree(app_commands.CommandTree["PokemonBot"]):
    """`on_error` maps `UserFacingError` to its text (refunding quota when asked),
    permission failures to "not allowed", and anything else to an error id plus a logged
    traceback (`error_text`, shared with the buttons)."""

    async def interaction_check(self, interaction: discord.Interaction[PokemonBot], /) -> bool:
        """Refuse an option whose JSON value does not fit its type before discord.py converts
        it: it calls `int()`/`float()` while building the namespace, before any error handler,
        so such a value would otherwise end the task with no answer."""
        if interaction.type is discord.InteractionType.application_command:
            found = mistyped_option(interaction.data or {})  # pyright: ignore[reportArgumentType]
            if found is not None:
                raise MistypedOption(*found)
        return True

    async def on_error(
        self, interaction: discord.Interaction[PokemonBot], error: app_commands.AppCommandError, /
    ) -> None:
        original: BaseException = error
        if isinstance(error, app_commands.CommandInvokeError):
            original = error.original
        await answer_error(interaction, original, _command_name(interaction))


def error_text(interaction: discord.Interaction[Any], error: BaseException, where: str) -> str:
    """The one localized answer to `error`, raised while handling `where` (a command such as
    `/pokemon`, or a button press), logged as it deserves: a refusal or bad input in one info
    line, storage trouble in one error line, anything else with an error id and its traceback."""
    locale = interaction.locale
    if isinstance(error, UserFacingError):
        log.info("refused %s for user=%s: %s", where, interaction.user.id, error.key)
        return error.localized(locale)
    if isinstance(error, app_commands.CheckFailure):
        return t("error.not_allowed", locale)
    if isinstance(error, app_commands.TransformerError | MistypedOption):
        log.info("invalid option in %s for user=%s: %s", where, interaction.user.id, error)
        return t("error.invalid_option", locale, value=shown(error.value))
    if isinstance(error, StorageError):
        # The disk is full, the file is locked for too long, ...: the operator must act,
        # the user can only wait. One line in the log says which (no traceback needed).
        log.error("storage failed in %s for user=%s: %s", where, interaction.user.id, error)
        return t("error.storage_unavailable", locale)
    if isinstance(error, app_commands.CommandSignatureMismatch):
        # A client that skips a required option (or an outdated command) is bad input,
        # not our bug: one clear answer, no error id, no traceback in the log.
        log.info("options of %s did not match for user=%s", where, interaction.user.id)
        return t("error.command_mismatch", locale)
    error_id = new_error_id()
    log.error(
        "error id=%s in %s by user=%s guild=%s channel=%s",
        error_id,
        where,
        interaction.user.id,
        interaction.guild_id,
        interaction.channel_id,
        exc_info=error,
    )
    return t("error.unexpected", locale, error_id=error_id)


async def answer_error(
    interaction: discord.Interaction[Any], error: BaseException, where: str
) -> None:
    """Tell the user who invoked `where` what went wrong, privately (`error_text`): the one
    answer to a failed command (`PokemonTree.on_error`) or button press (`bot.router`)."""
    text = error_text(interaction, error, where)
    try:
        await send_ephemeral(interaction, text)
    except discord.HTTPException:
        log.warning("could not tell user=%s about an error", interaction.user.id, exc_info=True)


def _command_name(interaction: discord.Interaction[Any]) -> str:
    command = interaction.command
    return f"/{command.qualified_name}" if command is not None else "an interaction"
