"""`/settings`: your own defaults for `/pokemon` (size, pictures per call, translation, a
negative prompt), in one private message whose selects save at once (`bot.settings_ui`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import language_of
from bot.settings_ui import settings_text, settings_view
from bot.translator import described

if TYPE_CHECKING:
    from bot.client import PokemonBot


class SettingsCog(commands.Cog):
    """`/settings` for everyone."""

    def __init__(self, bot: PokemonBot) -> None:
        self.bot = bot

    @app_commands.command(name="settings", description=described("cmd.settings.description"))
    async def settings(self, interaction: discord.Interaction[PokemonBot]) -> None:
        """Set your own defaults for /pokemon."""
        # One indexed read; quick enough to answer inside Discord's 3 s without deferring.
        user_id = interaction.user.id
        defaults = await interaction.client.store.user_settings.get(user_id)
        locale = language_of(interaction.locale)
        await interaction.response.send_message(
            settings_text(defaults, interaction.client.settings, locale),
            view=settings_view(user_id, defaults, locale),
            ephemeral=True,
        )


async def setup(bot: PokemonBot) -> None:
    """Extension entry point."""
    await bot.add_cog(SettingsCog(bot))
