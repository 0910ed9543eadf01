"""Who may use `/pokemon` where, as the server's admins set it in Server Settings →
Integrations, for the ways in that Discord does not guard itself: 🔁 and the buttons.

Read through the application command permissions API (`GET /applications/{app}/guilds/
{guild}/commands/permissions`: one call gives every command's overwrites and the
application-wide ones), cached per guild, and kept current by the
`APPLICATION_COMMAND_PERMISSIONS_UPDATE` gateway event (discord.py's
`on_raw_app_command_permissions_update`, wired in `bot.client`). The rules themselves are
`bot.moderation.command_allowed`.

When Discord cannot be asked (an outage), a 🔁 is let through and the next one asks again: the
picture is still subject to the rate limit, the pending cap and the blocklist.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import discord

from bot.moderation import Overwrite, command_allowed

if TYPE_CHECKING:
    from discord.ext import commands

log = logging.getLogger(__name__)

COMMAND_NAME = "pokemon"


def overwrites_of(entries: Iterable[Mapping[str, Any]]) -> list[Overwrite]:
    """Discord's `permissions` array as `Overwrite`s (entries of unknown shape are skipped)."""
    found: list[Overwrite] = []
    for entry in entries:
        try:
            found.append(Overwrite(int(entry["id"]), int(entry["type"]), bool(entry["permission"])))
        except (KeyError, TypeError, ValueError):
            log.warning("ignored a command permission entry of unknown shape: %r", entry)
    return found


class CommandPermissions:
    """The `/pokemon` permissions of each guild, read once and then updated by events."""

    def __init__(
        self, bot: commands.Bot | commands.AutoShardedBot, *, dev_guild: int | None = None
    ) -> None:
        self.bot = bot
        self.dev_guild = dev_guild
        self._command_id: int | None = None
        # guild id → {command id or application id → its overwrites}
        self._guilds: dict[int, dict[int, list[Overwrite]]] = {}

    async def command_id(self) -> int | None:
        """The id Discord gave `/pokemon` (global, or in the development guild)."""
        if self._command_id is None:
            guild = discord.Object(self.dev_guild) if self.dev_guild is not None else None
            for command in await self.bot.tree.fetch_commands(guild=guild):
                if command.name == COMMAND_NAME:
                    self._command_id = command.id
        return self._command_id

    async def _load(self, guild_id: int) -> dict[int, list[Overwrite]]:
        cached = self._guilds.get(guild_id)
        if cached is not None:
            return cached
        assert self.bot.application_id is not None  # set at login, before any event
        payload: Sequence[
            Mapping[str, Any]
        ] = await self.bot.http.get_guild_application_command_permissions(  # pyright: ignore[reportAssignmentType]
            self.bot.application_id, guild_id
        )
        loaded = {int(entry["id"]): overwrites_of(entry["permissions"]) for entry in payload}
        self._guilds[guild_id] = loaded
        return loaded

    def update(self, guild_id: int, target_id: int, overwrites: list[Overwrite]) -> None:
        """An APPLICATION_COMMAND_PERMISSIONS_UPDATE: the target's overwrites are now these.
        A guild not read yet stays unread (it is read whole when first needed)."""
        cached = self._guilds.get(guild_id)
        if cached is not None:
            cached[target_id] = overwrites
            log.info("command permissions of target=%s in guild=%s changed", target_id, guild_id)

    def forget(self, guild_id: int) -> None:
        self._guilds.pop(guild_id, None)

    async def allowed(
        self, *, guild_id: int, channel_id: int, member: discord.Member | None, user_id: int
    ) -> bool:
        """Whether `/pokemon` is on for this member in this channel."""
        if member is not None and member.guild_permissions.administrator:
            return True  # Discord lets administrators use every command
        try:
            command_id = await self.command_id()
            loaded = await self._load(guild_id)
        except (discord.HTTPException, OSError) as exc:
            log.warning("could not read command permissions of guild=%s: %s", guild_id, exc)
            return True
        application_id = self.bot.application_id or 0
        roles = [role.id for role in member.roles] if member is not None else []
        return command_allowed(
            loaded.get(command_id or -1, []),
            loaded.get(application_id, []),
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            roles=roles,
        )
