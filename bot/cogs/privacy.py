"""`/privacy`: what the bot stores about you and for how long, and "delete my data".

Discord's developer policy expects a bot to delete a user's data when asked. The deletion sits
behind a confirm button in the ephemeral answer; the job service cancels the user's queued and
running jobs first, so nothing of theirs is drawn or posted afterwards.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import t
from bot.translator import described

if TYPE_CHECKING:
    from bot.client import PokemonBot

log = logging.getLogger(__name__)

CONFIRM_SECONDS = 300.0  # the confirm button works this long, then the message says so


class ForgetMe(discord.ui.View):
    """The confirm button under `/privacy`'s answer; only the user who asked may press it."""

    def __init__(self, bot: PokemonBot, user_id: int, locale: object) -> None:
        super().__init__(timeout=CONFIRM_SECONDS)
        self.bot = bot
        self.user_id = user_id
        self.confirm.label = t("privacy.delete_button", locale)

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        if interaction.user.id == self.user_id:
            return True
        await interaction.response.send_message(
            t("error.not_allowed", interaction.locale), ephemeral=True
        )
        return False

    @discord.ui.button(style=discord.ButtonStyle.danger, custom_id="privacy:forget")
    async def confirm(
        self, interaction: discord.Interaction[PokemonBot], button: discord.ui.Button[ForgetMe]
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        cancelled, deleted = await self.bot.service.forget_user(self.user_id)
        log.info(
            "user=%s deleted their data: %d rows, %d jobs cancelled",
            self.user_id,
            deleted,
            len(cancelled),
        )
        self.stop()
        await interaction.followup.send(
            t(
                "privacy.deleted",
                interaction.locale,
                records=t("count.records", interaction.locale, count=deleted),
                jobs=t("count.queued_pictures", interaction.locale, count=len(cancelled)),
            ),
            ephemeral=True,
        )


class Privacy(commands.Cog):
    """`/privacy` for everyone."""

    def __init__(self, bot: PokemonBot) -> None:
        self.bot = bot

    @app_commands.command(name="privacy", description=described("cmd.privacy.description"))
    async def privacy(self, interaction: discord.Interaction[PokemonBot]) -> None:
        """What the bot stores about you, for how long, and a button to delete it."""
        text = t(
            "privacy.summary",
            interaction.locale,
            days=t(
                "count.days", interaction.locale, count=self.bot.settings.pokemon_retention_days
            ),
        )
        view = ForgetMe(self.bot, interaction.user.id, interaction.locale)
        await interaction.response.send_message(text, view=view, ephemeral=True)


async def setup(bot: PokemonBot) -> None:
    await bot.add_cog(Privacy(bot))
