"""`/ratelimit set|default|clear|show`: server admins set how many images members may make.

The group is hidden from non-admins by `default_permissions(manage_guild=True)`, but servers can
override that default, so every subcommand checks again at run time with `admin_only()`
(`POKEMON_OWNER_IDS` always pass). Each change is audited in storage with the acting admin's id,
and the ephemeral reply says what changed from what to what.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import t
from bot.permissions import admin_only
from bot.quota_text import limit_text, quota_lines, source_text
from bot.translator import described
from bot.validation import whole_number

if TYPE_CHECKING:
    from bot.client import PokemonBot
    from storage.types import EffectiveLimit

log = logging.getLogger(__name__)

# Declared to Discord (app_commands.Range) and checked again in code: discord.py does not
# check ranges or JSON types, and a modified client can send anything.
MAX_IMAGES = 10_000
# A message holds 2000 characters; this many override lines always fit.
SHOW_MAX_USERS = 25

PERIODS = [
    app_commands.Choice(
        name=app_commands.locale_str("hour", key="ratelimit.period.hour"), value="hour"
    ),
    app_commands.Choice(
        name=app_commands.locale_str("day", key="ratelimit.period.day"), value="day"
    ),
]


def _value(limit: EffectiveLimit, locale: object) -> str:
    return limit_text(limit.images, limit.period, locale)


class RateLimitCog(commands.Cog):
    """The `/ratelimit` admin group."""

    ratelimit = app_commands.Group(
        name="ratelimit",
        description=described("cmd.ratelimit.description"),
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: PokemonBot) -> None:
        self.bot = bot

    @ratelimit.command(name="set", description=described("cmd.ratelimit.set.description"))
    @app_commands.describe(
        user=described("cmd.ratelimit.set.user.description"),
        images=described("cmd.ratelimit.set.images.description"),
        per=described("cmd.ratelimit.set.per.description"),
    )
    @app_commands.choices(per=PERIODS)
    @admin_only()
    async def set_user(
        self,
        interaction: discord.Interaction[PokemonBot],
        user: discord.Member,
        images: app_commands.Range[int, 0, MAX_IMAGES],
        per: app_commands.Choice[str],
    ) -> None:
        """Set a member's personal limit."""
        images = _images(images)
        store = interaction.client.store
        guild_id = _guild_id(interaction)
        locale = interaction.locale
        before = await store.limits.effective(guild_id, user.id)
        await store.limits.set_user(
            guild_id, user.id, images, per.value, actor_id=interaction.user.id
        )
        log.info(
            "limit set guild=%s user=%s images=%s per=%s by=%s",
            guild_id,
            user.id,
            images,
            per.value,
            interaction.user.id,
        )
        lines = [
            t(
                "ratelimit.set.done",
                locale,
                user=user.mention,
                old=_value(before, locale),
                old_source=source_text(before.source, locale),
                new=limit_text(images, per.value, locale),
            )
        ]
        if user.id in interaction.client.owner_ids:
            lines.append(t("ratelimit.owner_note", locale, user=user.mention))
        await interaction.response.send_message("\n".join(lines), ephemeral=True)

    @ratelimit.command(name="default", description=described("cmd.ratelimit.default.description"))
    @app_commands.describe(
        images=described("cmd.ratelimit.default.images.description"),
        per=described("cmd.ratelimit.default.per.description"),
    )
    @app_commands.choices(per=PERIODS)
    @admin_only()
    async def set_default(
        self,
        interaction: discord.Interaction[PokemonBot],
        images: app_commands.Range[int, 0, MAX_IMAGES],
        per: app_commands.Choice[str],
    ) -> None:
        """Set this server's default limit for everyone."""
        images = _images(images)
        store = interaction.client.store
        guild_id = _guild_id(interaction)
        locale = interaction.locale
        before = await store.limits.guild_default(guild_id)
        await store.limits.set_guild_default(
            guild_id, images, per.value, actor_id=interaction.user.id
        )
        log.info(
            "guild default set guild=%s images=%s per=%s by=%s",
            guild_id,
            images,
            per.value,
            interaction.user.id,
        )
        text = t(
            "ratelimit.default.done",
            locale,
            old=_value(before, locale),
            old_source=source_text(before.source, locale),
            new=limit_text(images, per.value, locale),
        )
        await interaction.response.send_message(text, ephemeral=True)

    @ratelimit.command(name="clear", description=described("cmd.ratelimit.clear.description"))
    @app_commands.describe(user=described("cmd.ratelimit.clear.user.description"))
    @admin_only()
    async def clear_user(
        self, interaction: discord.Interaction[PokemonBot], user: discord.Member
    ) -> None:
        """Remove a member's personal limit."""
        store = interaction.client.store
        guild_id = _guild_id(interaction)
        locale = interaction.locale
        before = await store.limits.effective(guild_id, user.id)
        removed = await store.limits.clear_user(guild_id, user.id, actor_id=interaction.user.id)
        if not removed:
            # Nothing to remove: storage changed nothing and wrote no audit row.
            text = t(
                "ratelimit.clear.none",
                locale,
                user=user.mention,
                source=source_text(before.source, locale),
                current=_value(before, locale),
            )
            await interaction.response.send_message(text, ephemeral=True)
            return
        after = await store.limits.effective(guild_id, user.id)
        log.info("limit cleared guild=%s user=%s by=%s", guild_id, user.id, interaction.user.id)
        text = t(
            "ratelimit.clear.done",
            locale,
            user=user.mention,
            old=_value(before, locale),
            new=_value(after, locale),
            new_source=source_text(after.source, locale),
        )
        await interaction.response.send_message(text, ephemeral=True)

    @ratelimit.command(name="show", description=described("cmd.ratelimit.show.description"))
    @app_commands.describe(user=described("cmd.ratelimit.show.user.description"))
    @admin_only()
    async def show(
        self, interaction: discord.Interaction[PokemonBot], user: discord.Member | None = None
    ) -> None:
        """Show this server's limits, or one member's limit and quota."""
        store = interaction.client.store
        guild_id = _guild_id(interaction)
        locale = interaction.locale
        if user is not None:
            limit = await store.limits.effective(guild_id, user.id)
            quota = await store.limits.quota(guild_id, user.id)
            lines = [
                t(
                    "ratelimit.show.member",
                    locale,
                    user=user.mention,
                    value=_value(limit, locale),
                    source=source_text(limit.source, locale),
                ),
                *quota_lines(quota, locale),
            ]
        else:
            lines = await self._server_lines(interaction, guild_id)
        await interaction.response.send_message("\n".join(lines), ephemeral=True)

    async def _server_lines(
        self, interaction: discord.Interaction[PokemonBot], guild_id: int
    ) -> list[str]:
        store = interaction.client.store
        locale = interaction.locale
        default = await store.limits.guild_default(guild_id)
        images, period = interaction.client.settings.default_limit
        lines = [t("ratelimit.show.header", locale)]
        if default.source == "guild":
            lines.append(t("ratelimit.show.guild_default", locale, value=_value(default, locale)))
        else:
            lines.append(t("ratelimit.show.guild_default_unset", locale))
        lines.append(
            t("ratelimit.show.global_default", locale, value=limit_text(images, period, locale))
        )
        overrides = await store.limits.list_user_limits(guild_id)
        if not overrides:
            lines.append(t("ratelimit.show.no_users", locale))
            return lines
        lines.append(t("ratelimit.show.users_header", locale, count=len(overrides)))
        lines.extend(
            t(
                "ratelimit.show.user_line",
                locale,
                user=f"<@{entry.user_id}>",
                value=limit_text(entry.images, entry.period, locale),
            )
            for entry in overrides[:SHOW_MAX_USERS]
        )
        if len(overrides) > SHOW_MAX_USERS:
            lines.append(t("ratelimit.show.more", locale, count=len(overrides) - SHOW_MAX_USERS))
        return lines


def _images(value: object) -> int:
    """The `images` option, a whole number from 0 (blocked) to MAX_IMAGES."""
    return whole_number(value, 0, MAX_IMAGES, "error.images_range")


def _guild_id(interaction: discord.Interaction[PokemonBot]) -> int:
    # The group is guild_only, so Discord never delivers it elsewhere; a missing id is a bug.
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage
    return interaction.guild_id


async def setup(bot: PokemonBot) -> None:
    """Extension entry point."""
    await bot.add_cog(RateLimitCog(bot))
