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
    permission failures to "not allowed", and anything else to an error id plus a logged traceback."""

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
        locale = interaction.locale
        if isinstance(original, UserFacingError):
            text = original.localized(locale)
            log.info(
                "refused %s for user=%s: %s",
                _command_name(interaction),
                interaction.user.id,
                original.key,
            )
        elif isinstance(original, app_commands.CheckFailure):
            text = t("error.not_allowed", locale)
        elif isinstance(original, app_commands.TransformerError | MistypedOption):
            log.info(
                "invalid option in %s for user=%s: %s",
                _command_name(interaction),
                interaction.user.id,
                original,
            )
            text = t("error.invalid_option", locale, value=shown(original.value))
        elif isinstance(original, StorageError):
            # The disk is full, the file is locked for too long, ...: the operator must act,
            # the user can only wait. One line in the log says which (no traceback needed).
            log.error(
                "storage failed in %s for user=%s: %s",
                _command_name(interaction),
                interaction.user.id,
                original,
            )
            text = t("error.storage_unavailable", locale)
        elif isinstance(original, app_commands.CommandSignatureMismatch):
            # A client that skips a required option (or an outdated command) is bad input,
            # not our bug: one clear answer, no error id, no traceback in the log.
            log.info(
                "options of %s did not match for user=%s",
                _command_name(interaction),
                interaction.user.id,
            )
            text = t("error.command_mismatch", locale)
        else:
            error_id = new_error_id()
            log.error(
                "error id=%s in %s by user=%s guild=%s channel=%s",
                error_id,
                _command_name(interaction),
                interaction.user.id,
                interaction.guild_id,
                interaction.channel_id,
                exc_info=original,
            )
            text = t("error.unexpected", locale, error_id=error_id)
        try:
            await send_ephemeral(interaction, text)
        except discord.HTTPException:
            log.warning("could not tell user=%s about an error", interaction.user.id, exc_info=True)


def _command_name(interaction: discord.Interaction[Any]) -> str:
    command = interaction.command
    return f"/{command.qualified_name}" if command is not None else "an interaction"
