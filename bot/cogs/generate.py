"""`/pokemon`: validate → defer → admit → queue → progress → image."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserFacingError
from bot.i18n import language_of, t
from bot.jobs import new_job
from bot.messaging import Destination, defer_public, relative
from bot.translator import described
from bot.validation import MAX_NEGATIVE_CHARS, MAX_PROMPT_CHARS, SEED_MAX, validate_pokemon
from generation.errors import QueueFullError, WorkerStoppedError

if TYPE_CHECKING:
    from bot.client import PokemonBot
    from storage import Admission

log = logging.getLogger(__name__)

# Discord-side bounds; settings may narrow steps further (checked in validation).
MAX_STEPS_OPTION = 150


def refusal(admission: Admission, locale: object, *, max_pending: int) -> UserFacingError:
    """The user-facing reason an admission was refused."""
    if admission.reason == "blocked":
        return UserFacingError("error.blocked")
    if admission.reason == "pending":
        return UserFacingError("error.pending_cap", max=max_pending)
    quota = admission.quota
    retry_at = admission.retry_at or quota.reset_at
    return UserFacingError(
        "error.rate_limited",
        limit=quota.limit if quota.limit is not None else 0,
        period=t(f"pokemon.period.{quota.period}", locale),
        retry=relative(retry_at) if retry_at is not None else "—",
    )


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
        bot = self.bot
        # 1. Pure checks first: a bad prompt is refused before the defer, ephemeral at once.
        request = validate_pokemon(
            bot.settings, prompt, negative=negative, seed=seed, steps=steps, guidance=guidance
        )
        if not bot.runner.accepting:
            raise UserFacingError("error.shutting_down")
        # 2. Defer well inside Discord's 3 s; nothing slow before it.
        await defer_public(interaction)
        # 3. Admission: rate limit + pending cap + the queued row, in one transaction.
        locale = language_of(interaction.locale)
        admission = await bot.store.admit(
            new_job(
                request,
                user_id=interaction.user.id,
                guild_id=interaction.guild_id,
                channel_id=interaction.channel_id,
                locale=locale,
                interaction_expires_at=interaction.expires_at,
            )
        )
        if not admission.admitted or admission.job is None:
            raise refusal(admission, locale, max_pending=bot.settings.pokemon_user_max_pending)
        job = admission.job
        interaction.extras["job_id"] = job.id
        # 4. Queue it; a full queue is refused at once (and the row does not count).
        dest = Destination(
            channel_id=interaction.channel_id or 0,
            guild_id=interaction.guild_id,
            interaction=interaction,
        )
        try:
            await bot.runner.submit(job, request, dest, locale=locale)
        except QueueFullError:
            raise UserFacingError(
                "error.queue_full", refund=True, size=bot.settings.pokemon_queue_size
            ) from None
        except WorkerStoppedError:
            raise UserFacingError("error.shutting_down", refund=True) from None
        interaction.extras["submitted"] = True
        log.info(
            "job=%s queued by user=%s guild=%s steps=%s seed=%s",
            job.id,
            interaction.user.id,
            interaction.guild_id,
            request.steps,
            request.seed,
        )


async def setup(bot: PokemonBot) -> None:
    await bot.add_cog(Generate(bot))
