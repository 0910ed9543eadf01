"""`is_admin`, `admin_only()` and the 🗑️/✖ check on real `discord.Interaction` objects built
from gateway payloads, and `may_use_pokemon` where no settings apply."""

from __future__ import annotations

from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from bot.permissions import (
    NotAdminError,
    admin_only,
    is_admin,
    may_manage_job,
    may_use_pokemon,
    member_permissions,
)

GUILD_ID = 100
OWNER_ID = 7
MEMBER_ID = 42


def make_bot(owner_ids: frozenset[int] = frozenset()) -> commands.Bot:
    """A logged-out bot whose connection state knows its own user, as after READY."""
    bot = commands.Bot(command_prefix="!", intents=discord.Intents(guilds=True))
    # PokemonBot sets owner_ids from POKEMON_OWNER_IDS the same way.
    bot.owner_ids = owner_ids
    me = {"id": "800", "username": "pokemon", "discriminator": "0", "avatar": None, "bot": True}
    bot._connection.user = discord.ClientUser(state=bot._connection, data=me)  # type: ignore[arg-type]
    return bot


def make_interaction(
    bot: commands.Bot,
    *,
    user_id: int = MEMBER_ID,
    permissions: discord.Permissions,
    guild: bool = True,
) -> discord.Interaction[Any]:
    """An application-command interaction as Discord's INTERACTION_CREATE would deliver it."""
    user = {
        "id": str(user_id),
        "username": f"user{user_id}",
        "discriminator": "0",
        "avatar": None,
        "global_name": None,
    }
    payload: dict[str, Any] = {
        "id": "900",
        "application_id": "800",
        "type": 2,
        "token": "interaction-token",
        "version": 1,
        "data": {"id": "700", "name": "ratelimit", "type": 1},
        "attachment_size_limit": 10 * 1024 * 1024,
        "locale": "en-US",
        "channel": {"id": "200", "type": 0, "name": "general", "position": 0},
    }
    if guild:
        payload["guild_id"] = str(GUILD_ID)
        payload["member"] = {
            "user": user,
            "roles": [],
            "flags": 0,
            "joined_at": "2024-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "permissions": str(permissions.value),
        }
    else:
        payload["user"] = user
        payload["channel"] = {"id": "201", "type": 1}
    return discord.Interaction(data=payload, state=bot._connection)  # type: ignore[arg-type]


def test_member_with_manage_server_is_admin() -> None:
    interaction = make_interaction(make_bot(), permissions=discord.Permissions(manage_guild=True))
    assert is_admin(interaction) is True


def test_administrator_counts_as_admin() -> None:
    interaction = make_interaction(make_bot(), permissions=discord.Permissions(administrator=True))
    assert is_admin(interaction) is True


def test_member_without_manage_server_is_not_admin() -> None:
    everyday = discord.Permissions(send_messages=True, manage_messages=True, ban_members=True)
    interaction = make_interaction(make_bot(), permissions=everyday)
    assert is_admin(interaction) is False


def test_owner_id_is_admin_without_any_permission() -> None:
    bot = make_bot(frozenset({OWNER_ID}))
    interaction = make_interaction(bot, user_id=OWNER_ID, permissions=discord.Permissions.none())
    assert is_admin(interaction) is True


def test_owner_ids_do_not_make_other_users_admins() -> None:
    bot = make_bot(frozenset({OWNER_ID}))
    interaction = make_interaction(bot, permissions=discord.Permissions.none())
    assert is_admin(interaction) is False


def test_nobody_but_an_owner_is_admin_in_direct_messages() -> None:
    bot = make_bot(frozenset({OWNER_ID}))
    stranger = make_interaction(bot, permissions=discord.Permissions.none(), guild=False)
    owner = make_interaction(
        bot, user_id=OWNER_ID, permissions=discord.Permissions.none(), guild=False
    )
    assert (is_admin(stranger), is_admin(owner)) == (False, True)


def _guarded_command() -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="guarded", description="A command behind admin_only()")
    @admin_only()
    async def guarded(interaction: discord.Interaction[Any]) -> None:
        raise AssertionError("never called by these tests")

    return guarded


def test_admin_only_raises_a_check_failure_for_non_admins() -> None:
    check = _guarded_command().checks[0]
    interaction = make_interaction(make_bot(), permissions=discord.Permissions.none())
    with pytest.raises(NotAdminError) as caught:
        check(interaction)
    # The tree answers every CheckFailure with the localized "not allowed" message.
    assert isinstance(caught.value, app_commands.CheckFailure)


def test_admin_only_passes_admins_and_owners() -> None:
    check = _guarded_command().checks[0]
    admin = make_interaction(make_bot(), permissions=discord.Permissions(manage_guild=True))
    owner = make_interaction(
        make_bot(frozenset({OWNER_ID})), user_id=OWNER_ID, permissions=discord.Permissions.none()
    )
    assert (check(admin), check(owner)) == (True, True)


# ---- 🗑️ / ✖ and /pokemon's settings: one check each for buttons, reactions and the service --

REQUESTER_ID = 55


@pytest.mark.parametrize(
    ("user_id", "owner_ids", "permissions", "allowed"),
    [
        (REQUESTER_ID, frozenset(), discord.Permissions.none(), True),  # their own picture
        (REQUESTER_ID, frozenset(), None, True),  # in a DM too
        (MEMBER_ID, frozenset({MEMBER_ID}), discord.Permissions.none(), True),  # an owner
        (MEMBER_ID, frozenset(), discord.Permissions(manage_guild=True), True),
        (MEMBER_ID, frozenset(), discord.Permissions(administrator=True), True),
        (MEMBER_ID, frozenset(), discord.Permissions(manage_messages=True), False),
        (MEMBER_ID, frozenset({OWNER_ID}), discord.Permissions.none(), False),
        (MEMBER_ID, frozenset(), None, False),  # nobody manages a DM
    ],
)
def test_may_manage_job_is_the_requester_an_owner_or_a_server_manager(
    user_id: int, owner_ids: frozenset[int], permissions: discord.Permissions | None, allowed: bool
) -> None:
    assert (
        may_manage_job(REQUESTER_ID, user_id=user_id, owner_ids=owner_ids, permissions=permissions)
        is allowed
    )


def test_a_button_press_and_a_reaction_pass_their_own_values_to_the_same_check() -> None:
    """A press carries the member's permissions in the interaction; outside a guild none."""
    bot = make_bot()
    manager = make_interaction(bot, permissions=discord.Permissions(manage_guild=True))
    in_dm = make_interaction(bot, permissions=discord.Permissions.all(), guild=False)
    assert member_permissions(manager) is not None
    assert member_permissions(in_dm) is None
    assert may_manage_job(
        REQUESTER_ID, user_id=MEMBER_ID, owner_ids=(), permissions=member_permissions(manager)
    )
    assert not may_manage_job(
        REQUESTER_ID, user_id=MEMBER_ID, owner_ids=(), permissions=member_permissions(in_dm)
    )


async def test_pokemons_settings_do_not_apply_outside_a_guild_or_without_a_checker() -> None:
    for guild_id in (None, GUILD_ID):
        assert await may_use_pokemon(
            None, guild_id=guild_id, channel_id=1, user_id=MEMBER_ID, member=None
        )
