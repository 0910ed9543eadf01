"""Who may run the admin commands: Manage Server at run time, or a configured owner id.

`default_permissions(manage_guild=True)` on a command is only a default that server admins can
override in their Integrations settings, so every admin command checks again when it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import discord
from discord import app_commands

if TYPE_CHECKING:
    from bot.client import PokemonBot

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
    if interaction.guild_id is None:
        # Outside a guild the payload carries no permissions: nobody manages a DM.
        return False
    permissions = interaction.permissions
    return permissions.manage_guild or permissions.administrator


def admin_only() -> Callable[[T], T]:
    """An `app_commands.check` that raises `NotAdminError` (a `CheckFailure`) for non-admins."""

    def predicate(interaction: discord.Interaction[Any]) -> bool:
        if not is_admin(interaction):
            raise NotAdminError
        return True

    return app_commands.check(predicate)
