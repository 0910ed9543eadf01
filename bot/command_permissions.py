"""Who may use `/pokemon` where, as the server's admins set it in Server Settings →
Integrations, for the ways in that Discord does not guard itself: 🔁 and the buttons.

Read through the application command permissions API (`GET /applications/{app}/guilds/
{guild}/commands/permissions`: one call gives every command's overwrites and the
application-wide ones), cached per guild, and kept current by the
`APPLICATION_COMMAND_PERMISSIONS_UPDATE` gateway event (discord.py's
`on_raw_app_command_permissions_update`, wired in `bot.client`). The rules themselves are
`bot.moderation.command_allowed`.

In a thread, the settings of its parent channel apply: Discord's documentation says "any
command permissions for a channel will apply to the threads it contains" (Application
Commands → Permissions), as threads inherit user and role permissions from their parent. A
thread's parent is read from discord.py's cache, else asked of Discord once
(`GET /channels/{id}`), and remembered (a thread never changes parent).

When Discord cannot be asked (an outage), a 🔁 is let through and the next one asks again: the
picture is still subject to the rate limit, the pending cap and the blocklist.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import discord

from bot.moderation import CHANNEL_TYPE, Overwrite, command_allowed

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
        # channel or thread id → the channel whose settings apply there (a thread: its parent)
        self._settings_channel: dict[int, int] = {}

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
        command = loaded.get(command_id or -1, [])
        application = loaded.get(application_id, [])
        named = {o.id for o in (*command, *application) if o.type == CHANNEL_TYPE}
        if named - {guild_id - 1, channel_id}:  # some channel has its own setting: which one?
            channel_id = await self.settings_channel(guild_id, channel_id)
        roles = [role.id for role in member.roles] if member is not None else []
        return command_allowed(
            command,
            application,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            roles=roles,
        )

    async def settings_channel(self, guild_id: int, channel_id: int) -> int:
        """The channel whose command permissions apply in `channel_id`: the channel itself,
        or for a thread its parent channel."""
        known = self._settings_channel.get(channel_id)
        if known is not None:
            return known
        guild = self.bot.get_guild(guild_id)
        channel: object = guild.get_channel_or_thread(channel_id) if guild is not None else None
        if channel is None:
            try:
                channel = await self.bot.fetch_channel(channel_id)
            except (discord.HTTPException, OSError) as exc:
                log.warning("could not tell whether channel=%s is a thread: %s", channel_id, exc)
                return channel_id  # asked again next time
        found = channel.parent_id if isinstance(channel, discord.Thread) else channel_id
        self._settings_channel[channel_id] = found
        return found
