"""`/privacy`: what the bot stores about you and for how long, and "delete my data".

Discord's developer policy expects a bot to delete a user's data when asked. The deletion sits
behind a button in the ephemeral answer (`bot.buttons.forget_buttons`, `pkmn:forget:<user>`):
it carries the user's id, so it still works after the bot restarts, and only that user may use
it. The press (`bot.presses.forget`) has the job service cancel the user's queued and running
jobs first, so nothing of theirs is drawn or posted afterwards, then takes the button off.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.buttons import forget_buttons
from bot.i18n import t
from bot.translator import described

if TYPE_CHECKING:
    from bot.client import PokemonBot

log = logging.getLogger(__name__)


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
        view = forget_buttons(interaction.user.id, interaction.locale)
        await interaction.response.send_message(text, view=view, ephemeral=True)


async def setup(bot: PokemonBot) -> None:
    await bot.add_cog(Privacy(bot))
