"""`/about`: what the bot is, and the licenses of what it serves.

The model is licensed under CreativeML OpenRAIL-M, whose use restrictions (paragraph 5 and
Attachment A) must be passed on to whoever the model is offered to: `/about` summarises them
and links to the full text, next to the upscaler's and the translator's licenses, the bot's own
(MIT) and version, and what `/privacy` covers. THIRD_PARTY.md says the same for operators.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import t
from bot.settings import DEFAULT_MODEL
from bot.translator import described

if TYPE_CHECKING:
    from bot.client import PokemonBot

# The model card's license link: the full CreativeML OpenRAIL-M text.
MODEL_LICENSE_URL = "https://huggingface.co/spaces/CompVis/stable-diffusion-license"
UPSCALER = "RealESRGAN_x4plus_anime_6B"
TRANSLATOR = "staka/fugumt-en-ja"
EMBED_COLOUR = discord.Colour.gold()


def bot_version() -> str:
    """The installed package's version (pyproject.toml), or "dev" for a bare checkout."""
    try:
        return version("pokemon-bot")
    except PackageNotFoundError:
        return "dev"


def about_embed(locale: object, *, retention_days: int) -> discord.Embed:
    """The answer's embed, in the user's language."""
    embed = discord.Embed(
        title=t("about.title", locale),
        description=t("about.intro", locale, model=DEFAULT_MODEL),
        colour=EMBED_COLOUR,
    )
    sections: list[tuple[str, dict[str, object]]] = [
        ("about.model", {"model": DEFAULT_MODEL, "url": MODEL_LICENSE_URL}),
        ("about.restrictions", {}),
        ("about.upscaler", {"upscaler": UPSCALER}),
        ("about.translator", {"translator": TRANSLATOR}),
        ("about.bot", {"version": bot_version()}),
        ("about.privacy", {"days": t("count.days", locale, count=retention_days)}),
    ]
    for key, params in sections:
        embed.add_field(
            name=t(f"{key}.name", locale), value=t(f"{key}.value", locale, **params), inline=False
        )
    return embed


class LicenseLink(discord.ui.View):
    """One link button to the model license's full text (a link needs no handler)."""

    def __init__(self, locale: object) -> None:
        super().__init__(timeout=None)
        self.add_item(
            discord.ui.Button(label=t("about.license_button", locale), url=MODEL_LICENSE_URL)
        )


class About(commands.Cog):
    """`/about` for everyone."""

    def __init__(self, bot: PokemonBot) -> None:
        self.bot = bot

    @app_commands.command(name="about", description=described("cmd.about.description"))
    async def about(self, interaction: discord.Interaction[PokemonBot]) -> None:
        """What this bot is, the model's license and its use restrictions, and more."""
        embed = about_embed(
            interaction.locale, retention_days=self.bot.settings.pokemon_retention_days
        )
        await interaction.response.send_message(
            embed=embed, view=LicenseLink(interaction.locale), ephemeral=True
        )


async def setup(bot: PokemonBot) -> None:
    await bot.add_cog(About(bot))
