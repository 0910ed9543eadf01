"""Reactions on result messages: 🔁 draws a variation for whoever reacted, 🎨 a new picture
from that picture (image-to-image at the strong strength), 🗑️ deletes.

Raw events, because the cached `on_reaction_add` never fires for messages sent before a restart.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.i18n import language_of
from bot.messaging import DELETE_EMOJIS, REGENERATE_EMOJIS, VARY_EMOJIS
from bot.origins import ReactionOrigin
from bot.permissions import may_manage_job, owner_ids_of
from bot.validation import VARY_STRONG

if TYPE_CHECKING:
    from bot.client import PokemonBot
    from storage import JobRecord

log = logging.getLogger(__name__)


class Reactions(commands.Cog):
    """🔁 and 🗑️ on the bot's result messages."""

    def __init__(self, bot: PokemonBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        bot = self.bot
        if bot.user is None or payload.user_id == bot.user.id or payload.guild_id is None:
            return  # Discord echoes the bot's own reactions back
        if payload.message_author_id is not None and payload.message_author_id != bot.user.id:
            return
        emoji = str(payload.emoji)
        if emoji not in REGENERATE_EMOJIS | VARY_EMOJIS and emoji not in DELETE_EMOJIS:
            return
        job = await bot.store.jobs.by_result_message(payload.message_id)
        if job is None:
            return  # not one of our results (or from before the database was reset)
        if emoji in REGENERATE_EMOJIS | VARY_EMOJIS:
            origin = ReactionOrigin(
                user_id=payload.user_id,
                guild_id=payload.guild_id,
                channel_id=payload.channel_id,
                message_id=payload.message_id,
                parent=job,
                locale=self._locale(payload, job),
                member=payload.member,  # roles, for /pokemon's Integrations settings
            )
            if emoji in VARY_EMOJIS:
                await bot.service.vary(origin, VARY_STRONG)
            else:
                await bot.service.regenerate(origin)
            await self._take_back(payload)
        else:
            await self._delete(payload, job)

    async def _take_back(self, payload: discord.RawReactionActionEvent) -> None:
        """Remove the user's 🔁 (or 🎨) so that the next one on this result is a fresh event.

        This is the one use of Manage Messages; without it the reaction simply stays.
        """
        channel = self.bot.get_partial_messageable(payload.channel_id, guild_id=payload.guild_id)
        message = channel.get_partial_message(payload.message_id)
        try:
            await message.remove_reaction(payload.emoji, discord.Object(payload.user_id))
        except discord.HTTPException as exc:
            log.debug("could not remove 🔁 of user=%s: %s", payload.user_id, exc)

    async def _delete(self, payload: discord.RawReactionActionEvent, job: JobRecord) -> None:
        member = payload.member  # guild reactions carry the member, roles included
        if not may_manage_job(
            job.user_id,
            user_id=payload.user_id,
            owner_ids=owner_ids_of(self.bot),
            permissions=member.guild_permissions if member is not None else None,
        ):
            return
        channel = self.bot.get_partial_messageable(payload.channel_id, guild_id=payload.guild_id)
        try:
            await channel.get_partial_message(payload.message_id).delete()
        except discord.NotFound:
            return
        except discord.HTTPException as exc:
            log.warning("could not delete result of job=%s: %s", job.id, exc)
            return
        log.info("result of job=%s deleted by user=%s", job.id, payload.user_id)

    def _locale(self, payload: discord.RawReactionActionEvent, parent: JobRecord) -> str:
        # A reaction carries no client locale: use the server's language, else the original's.
        guild = self.bot.get_guild(payload.guild_id) if payload.guild_id else None
        if guild is not None:  # discord.py defaults a guild's locale to en-US, never None
            return language_of(guild.preferred_locale)
        return parent.locale


async def setup(bot: PokemonBot) -> None:
    await bot.add_cog(Reactions(bot))
