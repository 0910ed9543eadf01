"""`/pokemon`: parse and check the options, then hand the request to the job service."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.service import CommandOrigin
from bot.translator import described
from bot.validation import MAX_NEGATIVE_CHARS, MAX_PROMPT_CHARS, SEED_MAX, validate_pokemon

if TYPE_CHECKING:
    from bot.client import PokemonBot

log = logging.getLogger(__name__)

# Discord-side bounds; settings may narrow steps further (checked in validation).
MAX_STEPS_OPTION = 150


class Generate(commands.Cog):
    """The image command."""

    def __init__(self, bot: PokemonBot) -> None:
        self.bot = bot

    @app_commands.command(name="pokemon", description=described("cmd.pokemon.description"))
    @app_commands.guild_only()
    @app_commands.describe(
        prompt=described("cmd.pokemon.prompt.description"),
        negative=described("cmd.pokemon.negative.description"),
        seed=described("cmd.pokemon.seed.description"),
        steps=described("cmd.pokemon.steps.description"),
        guidance=described("cmd.pokemon.guidance.description"),
    )
    async def pokemon(  # noqa: PLR0917 - each option is a parameter, as discord.py reads them
        self,
        interaction: discord.Interaction[PokemonBot],
        prompt: app_commands.Range[str, 1, MAX_PROMPT_CHARS],
        negative: app_commands.Range[str, 1, MAX_NEGATIVE_CHARS] | None = None,
        seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
        steps: app_commands.Range[int, 1, MAX_STEPS_OPTION] | None = None,
        guidance: app_commands.Range[float, 1.0, 20.0] | None = None,
    ) -> None:
        """Draw a Pokémon-style picture from a Japanese prompt."""
        # Pure checks first: a bad prompt is refused before the defer, ephemeral at once.
        request = validate_pokemon(
            self.bot.settings, prompt, negative=negative, seed=seed, steps=steps, guidance=guidance
        )
        await self.bot.service.start(request, CommandOrigin(interaction))


async def setup(bot: PokemonBot) -> None:
    await bot.add_cog(Generate(bot))
