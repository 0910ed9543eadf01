"""`/usage`: anyone's own quota: how many images they made, how many are left, when a slot frees.

The wording of limits and quotas lives in `bot.quota_text`, shared with `/ratelimit`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import t
from bot.quota_text import quota_lines
from bot.translator import described

if TYPE_CHECKING:
    from bot.client import PokemonBot


class UsageCog(commands.Cog):
    """`/usage` for everyone."""

    def __init__(self, bot: PokemonBot) -> None:
        self.bot = bot

    @app_commands.command(name="usage", description=described("cmd.usage.description"))
    async def usage(self, interaction: discord.Interaction[PokemonBot]) -> None:
        """Show how many images you have made and how many you can still make."""
        # Two indexed reads; quick enough to answer inside Discord's 3 s without deferring.
        store = interaction.client.store
        quota = await store.limits.quota(interaction.guild_id, interaction.user.id)
        today = await store.usage.user_images(interaction.guild_id, interaction.user.id)
        lines = [
            t("usage.header", interaction.locale),
            t("usage.today", interaction.locale, count=today),
            *quota_lines(quota, interaction.locale),
        ]
        await interaction.response.send_message("\n".join(lines), ephemeral=True)


async def setup(bot: PokemonBot) -> None:
    """Extension entry point."""
    await bot.add_cog(UsageCog(bot))
