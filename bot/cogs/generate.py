"""`/pokemon`: parse and check the options, then hand the request to the job service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import language_of, t
from bot.origins import CommandOrigin
from bot.sources import read_attachment
from bot.translator import described
from bot.user_defaults import Applied, apply_defaults, note_text
from bot.validation import (
    MAX_NEGATIVE_CHARS,
    MAX_PROMPT_CHARS,
    MAX_STRENGTH,
    MIN_STRENGTH,
    SEED_MAX,
    SIZES,
    TRANSLATE_CHOICES,
    validate_pokemon,
)
from generation.types import MAX_COUNT
from storage import StorageError

if TYPE_CHECKING:
    from bot.client import PokemonBot

log = logging.getLogger(__name__)

# Discord-side bounds; settings may narrow steps further (checked in validation).
MAX_STEPS_OPTION = 150
ABOUT_NOTICE = "about"  # the one-time pointer to /about (storage's notices_shown)
DEFAULTS_READ_SECONDS = 1.0  # the most the user's defaults may take to read before the defer


def _choices(kind: str, values: tuple[str, ...]) -> list[app_commands.Choice[str]]:
    """Choices named from the catalog (`choice.<kind>.<value>`), so both languages show."""
    return [
        app_commands.Choice(
            name=app_commands.locale_str(value, key=f"choice.{kind}.{value}"), value=value
        )
        for value in values
    ]


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
        size=described("cmd.pokemon.size.description"),
        count=described("cmd.pokemon.count.description"),
        translate=described("cmd.pokemon.translate.description"),
        image=described("cmd.pokemon.image.description"),
        strength=described("cmd.pokemon.strength.description"),
    )
    @app_commands.choices(size=_choices("size", SIZES))
    @app_commands.choices(translate=_choices("translate", TRANSLATE_CHOICES))
    async def pokemon(  # noqa: PLR0917 - each option is a parameter, as discord.py reads them
        self,
        interaction: discord.Interaction[PokemonBot],
        prompt: app_commands.Range[str, 1, MAX_PROMPT_CHARS],
        negative: app_commands.Range[str, 1, MAX_NEGATIVE_CHARS] | None = None,
        seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
        steps: app_commands.Range[int, 1, MAX_STEPS_OPTION] | None = None,
        guidance: app_commands.Range[float, 1.0, 20.0] | None = None,
        size: app_commands.Choice[str] | None = None,
        count: app_commands.Range[int, 1, MAX_COUNT] | None = None,
        translate: app_commands.Choice[str] | None = None,
        image: discord.Attachment | None = None,
        strength: app_commands.Range[float, MIN_STRENGTH, MAX_STRENGTH] | None = None,
    ) -> None:
        """Draw a Pokémon-style picture from a Japanese prompt."""
        # The user's own /settings fill the options left out (an option typed in wins).
        options, first_here = await self._prepare(
            interaction,
            size=None if size is None else size.value,
            count=count,
            translate=None if translate is None else translate.value,
            negative=negative,
        )
        # Pure checks first: a bad prompt is refused before the defer, ephemeral at once.
        request = validate_pokemon(
            self.bot.settings,
            prompt,
            negative=options.negative,
            seed=seed,
            steps=steps,
            guidance=guidance,
            size=options.size,
            count=options.count,
            translate=options.translate,
            strength=strength,
            has_image=image is not None,
        )
        # The picture is downloaded and checked by the service after the defer (it may take
        # longer than Discord's 3 s), before the job is admitted: a bad one costs nothing.
        source = None if image is None else (lambda: read_attachment(image))
        locale = language_of(interaction.locale)
        notes = [note_text(note, locale) for note in options.notes]
        if first_here:
            notes.append(t("about.first_notice", locale))
        origin = CommandOrigin(interaction, notes=tuple(notes))
        job = await self.bot.service.start(request, origin, source=source)
        if job is not None and first_here and job.guild_id is not None:
            with contextlib.suppress(StorageError):  # shown again next time: no harm
                await self.bot.store.user_settings.first_time(
                    job.user_id, job.guild_id, ABOUT_NOTICE
                )

    async def _prepare(
        self,
        interaction: discord.Interaction[PokemonBot],
        *,
        size: str | None,
        count: int | None,
        translate: str | None,
        negative: str | None,
    ) -> tuple[Applied, bool]:
        """The options with the user's defaults applied (`bot.user_defaults`), and whether
        this is their first picture in this server (its message then points to /about, whose
        license terms every user must be given). A few indexed reads, bounded so the defer
        still comes well inside Discord's 3 s: a database too slow to answer leaves the
        server's defaults and no notice, never a failed command."""
        store = self.bot.store
        user_id, guild_id = interaction.user.id, interaction.guild_id

        async def read() -> tuple[Applied, bool]:
            defaults = await store.user_settings.get(user_id)
            limit = None
            if count is None and defaults.count is not None:
                limit = (await store.limits.effective(guild_id, user_id)).images
            applied = apply_defaults(
                self.bot.settings,
                defaults,
                size=size,
                count=count,
                translate=translate,
                negative=negative,
                limit_images=limit,
            )
            first = guild_id is not None and not await store.user_settings.seen(
                user_id, guild_id, ABOUT_NOTICE
            )
            return applied, first

        try:
            return await asyncio.wait_for(read(), DEFAULTS_READ_SECONDS)
        except (TimeoutError, StorageError) as exc:
            log.warning("user=%s: their defaults could not be read: %s", user_id, exc or "slow")
            return Applied(size=size, count=count, translate=translate, negative=negative), False


async def setup(bot: PokemonBot) -> None:
    await bot.add_cog(Generate(bot))
