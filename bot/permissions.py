"""Who may do what: one check of each kind, for every way in (commands, buttons, reactions,
the job service), taking plain values so that each caller passes what it has.

- Admin commands: Manage Server at run time, or a configured owner id
  (`default_permissions(manage_guild=True)` on a command is only a default that server admins
  can override in their Integrations settings, so every admin command checks again).
- 🗑️ and ✖ (buttons and reactions): `may_manage_job`, the requester, an owner or a manager.
- 🔁, 🎨 and ℹ️ (buttons and reactions): `may_use_pokemon`, what `/pokemon`'s Integrations
  settings allow in that channel (`bot.command_permissions`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, TypeVar

import discord
from discord import app_commands

if TYPE_CHECKING:
    from bot.client import PokemonBot
    from bot.command_permissions import CommandPermissions

T = TypeVar("T")


class NotAdminError(app_commands.CheckFailure):
    """The invoking user lacks Manage Server and is not an owner.

    A `CheckFailure`, which the tree answers with the localized "not allowed" message.
    """

    def __init__(self) -> None:
        super().__init__("this command needs the Manage Server permission")


def owner_ids_of(client: object) -> frozenset[int]:
    """The bot's configured owner ids (`POKEMON_OWNER_IDS`); empty when the client has none."""
    return frozenset(getattr(client, "owner_ids", None) or ())


def is_admin(interaction: discord.Interaction[PokemonBot]) -> bool:
    """True when the user has Manage Server (or Administrator) here, or is a configured owner."""
    if interaction.user.id in owner_ids_of(interaction.client):
        return True
    return manages_server(member_permissions(interaction))


def member_permissions(interaction: discord.Interaction[Any]) -> discord.Permissions | None:
    """The user's permissions where they acted; None outside a guild (the payload carries
    none there: nobody manages a DM)."""
    return interaction.permissions if interaction.guild_id is not None else None


def manages_server(permissions: discord.Permissions | None) -> bool:
    """Manage Server or Administrator (None: not in a guild)."""
    return permissions is not None and (permissions.manage_guild or permissions.administrator)


def may_manage_job(
    requester_id: int,
    *,
    user_id: int,
    owner_ids: Collection[int],
    permissions: discord.Permissions | None,
) -> bool:
    """🗑️ and ✖ on a job of `requester_id`, by button or reaction: the requester, a configured
    owner, or someone who manages the server (`permissions`: theirs there, None in a DM)."""
    return user_id == requester_id or user_id in owner_ids or manages_server(permissions)


async def may_use_pokemon(
    command_permissions: CommandPermissions | None,
    *,
    guild_id: int | None,
    channel_id: int,
    user_id: int,
    member: discord.Member | None,
) -> bool:
    """🔁, 🎨 and ℹ️: whether `/pokemon`'s Integrations settings let this user use it in this
    channel (a thread: its parent's settings). Discord checks them for the slash command only,
    so every other way in asks here. Outside a guild (or with no checker) there are none."""
    if command_permissions is None or guild_id is None:
        return True
    return await command_permissions.allowed(
        guild_id=guild_id, channel_id=channel_id, member=member, user_id=user_id
    )


def admin_only() -> Callable[[T], T]:
    """An `app_commands.check` that raises `NotAdminError` (a `CheckFailure`) for non-admins."""

    def predicate(interaction: discord.Interaction[Any]) -> bool:
        if not is_admin(interaction):
            raise NotAdminError
        return True

    return app_commands.check(predicate)
