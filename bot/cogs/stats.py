"""`/stats [days]`: a chart of this server's images per day and top users, for admins."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.charts import (
    ChartLabels,
    chart_locale,
    has_cjk_font,
    render_stats_png_async,
    user_label,
)
from bot.i18n import t
from bot.permissions import admin_only
from bot.translator import described
from bot.validation import whole_number

if TYPE_CHECKING:
    from bot.client import PokemonBot

log = logging.getLogger(__name__)

DEFAULT_DAYS = 14
# Declared to Discord and checked again in code (discord.py checks neither ranges nor types):
# the window bounds what /stats reads and draws (one bar per day).
MAX_DAYS = 90
TOP_USERS = 10
FILENAME = "pokemon-stats.png"


def display_name(guild: discord.Guild | None, user_id: int) -> str:
    """The member's display name when the guild cache has them (and the fonts can draw it), else the id."""
    member = guild.get_member(user_id) if guild is not None else None
    return user_label(member.display_name if member is not None else None, user_id)


class StatsCog(commands.Cog):
    """`/stats` for admins."""

    def __init__(self, bot: PokemonBot) -> None:
        self.bot = bot

    @app_commands.command(name="stats", description=described("cmd.stats.description"))
    @app_commands.describe(days=described("cmd.stats.days.description"))
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @admin_only()
    async def stats(
        self,
        interaction: discord.Interaction[PokemonBot],
        days: app_commands.Range[int, 1, MAX_DAYS] = DEFAULT_DAYS,
    ) -> None:
        """Chart of this server's image generation (admins only)."""
        days = whole_number(days, 1, MAX_DAYS, "error.days_range")
        # Queries plus rendering can take longer than Discord's 3 s: acknowledge first.
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = interaction.guild_id
        if guild_id is None:  # guild_only: Discord never delivers it elsewhere
            raise app_commands.NoPrivateMessage
        usage = interaction.client.store.usage
        # Every day of the window, oldest first, with zeros: the bars need no gap filling.
        per_day = await usage.images_per_day(guild_id, days)
        top = await usage.top_users(guild_id, days, limit=TOP_USERS)
        totals = await usage.totals(guild_id, days)

        locale = interaction.locale
        chart_lang = chart_locale(locale)
        labels = ChartLabels(
            title=t("stats.chart.title", chart_lang, days=days),
            per_day=t("stats.chart.per_day", chart_lang),
            top_users=t("stats.chart.top_users", chart_lang),
            images=t("stats.chart.images", chart_lang),
            no_data=t("stats.chart.no_data", chart_lang),
        )
        names = [(display_name(interaction.guild, user_id), count) for user_id, count in top]
        png = await render_stats_png_async(per_day, names, labels)

        if totals.jobs == 0:
            text = t("stats.empty", locale, days=days)
        else:
            # Each counted noun is its own plural entry (see bot.i18n).
            text = t(
                "stats.summary",
                locale,
                window=t("stats.window", locale, count=days),
                images=t("count.images", locale, count=totals.done),
                users=t("count.users", locale, count=totals.users),
                jobs=t("count.jobs", locale, count=totals.jobs),
                failed=totals.failed,
                cancelled=totals.cancelled,
                pending=totals.pending,
            )
            if totals.avg_run_seconds is not None:
                text += "\n" + t("stats.avg_run", locale, seconds=f"{totals.avg_run_seconds:.1f}")
        text += "\n" + await generation_line(interaction.client, locale)
        log.info(
            "stats guild=%s days=%s jobs=%s by=%s", guild_id, days, totals.jobs, interaction.user.id
        )
        await interaction.followup.send(
            text, file=discord.File(io.BytesIO(png), filename=FILENAME), ephemeral=True
        )


async def generation_line(bot: PokemonBot, locale: object) -> str:
    """Whether anything can draw right now: workers online, queued and running jobs; a
    warning when no worker is online (users are being refused)."""
    status = await bot.generator.status()
    if status.workers == 0:
        return t("stats.no_workers", locale, detail=status.detail or "—")
    return t(
        "stats.generation",
        locale,
        workers=t("count.workers", locale, count=status.workers),
        queued=status.queued,
        running=status.running,
    )


async def setup(bot: PokemonBot) -> None:
    """Extension entry point. Reads the fonts' glyph tables once, in a thread, so the first
    /stats does not do it on the event loop (a CJK font has tens of thousands of glyphs)."""
    await asyncio.to_thread(has_cjk_font)
    await bot.add_cog(StatsCog(bot))
