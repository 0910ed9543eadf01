"""`/queue`: where your own pictures are in the queue, and how busy the queue is."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import t
from bot.messaging import relative
from bot.translator import described

if TYPE_CHECKING:
    from bot.client import PokemonBot
    from bot.jobs.service import QueuePlace

SHOW_MAX_JOBS = 10  # a user has at most POKEMON_USER_MAX_PENDING; this always fits


def place_line(place: QueuePlace, locale: object) -> str:
    """One job of `/queue`: drawing now, its place (and when it should start), or waiting."""
    if place.position == 0:
        return t("queue.line_running", locale, job=place.job_id)
    if place.position is None:
        return t("queue.line_waiting", locale, job=place.job_id)
    if place.eta_seconds is not None:
        when = relative(discord.utils.utcnow() + dt.timedelta(seconds=place.eta_seconds))
        return t("queue.line_eta", locale, job=place.job_id, position=place.position, eta=when)
    return t("queue.line", locale, job=place.job_id, position=place.position)


class QueueCog(commands.Cog):
    """`/queue` for everyone."""

    def __init__(self, bot: PokemonBot) -> None:
        self.bot = bot

    @app_commands.command(name="queue", description=described("cmd.queue.description"))
    async def queue(self, interaction: discord.Interaction[PokemonBot]) -> None:
        """Show your pictures in the queue and how many are waiting in all."""
        # One indexed read and the generator's counters: answered inside Discord's 3 s.
        locale = interaction.locale
        places = await interaction.client.service.queue_places(interaction.user.id)
        lines = [t("queue.header", locale)]
        if places.jobs:
            lines.extend(place_line(place, locale) for place in places.jobs[:SHOW_MAX_JOBS])
        else:
            lines.append(t("queue.none", locale))
        lines.append(
            t("queue.total", locale, count=places.queued)
            + " · "
            + t("queue.running", locale, count=places.running)
        )
        await interaction.response.send_message("\n".join(lines), ephemeral=True)


async def setup(bot: PokemonBot) -> None:
    """Extension entry point."""
    await bot.add_cog(QueueCog(bot))
