"""`/history`: your last pictures in this server, newest first, privately, with a link to each
(`bot.history_ui`). Only your own, and only those you drew here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.history_ui import history_page, user_history
from bot.i18n import language_of
from bot.translator import described

if TYPE_CHECKING:
    from bot.client import PokemonBot


class HistoryCog(commands.Cog):
    """`/history` for everyone."""

    def __init__(self, bot: PokemonBot) -> None:
        self.bot = bot

    @app_commands.command(name="history", description=described("cmd.history.description"))
    @app_commands.guild_only()
    async def history(self, interaction: discord.Interaction[PokemonBot]) -> None:
        """Your last pictures in this server."""
        # One indexed read of at most 25 rows: answered inside Discord's 3 s without deferring.
        jobs = await user_history(interaction, interaction.user.id)
        embed, view = history_page(jobs, interaction.user.id, 0, language_of(interaction.locale))
        if view is None:
            await interaction.response.send_message(embed=embed, ephemeral=True)
        else:
            await interaction.response.send_message(embed=embed, view=view, ephemeral=True)


async def setup(bot: PokemonBot) -> None:
    """Extension entry point."""
    await bot.add_cog(HistoryCog(bot))
