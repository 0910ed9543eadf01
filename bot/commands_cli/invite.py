"""`pokemon-bot invite`: the OAuth2 URL that adds the bot to a server with exactly the rights it uses.

The application id is read from the token (its first part is the base64 of the id) or given
with `--application-id`. The token itself is never printed.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import re
from typing import TYPE_CHECKING

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from bot.cli import CliError
from bot.settings import Settings

if TYPE_CHECKING:
    import discord

# `bot` adds the bot user; `applications.commands` lets it register its slash commands.
SCOPES = ("bot", "applications.commands")

_PART = re.compile(r"^[A-Za-z0-9_-]+$")
# Snowflakes are 64-bit: up to 20 decimal digits; ids issued so far have at least 15.
_SNOWFLAKE = re.compile(r"^[1-9]\d{14,19}$")


class TokenError(ValueError):
    """The token is missing or malformed. The message is one line and never contains the token."""


def application_id_from_token(token: str) -> int:
    """The application (bot user) id a bot token encodes in its first part.

    A token is three dot-separated base64url parts; the first is the base64 of the decimal id.
    Raises TokenError with a fix, never echoing the token.
    """
    token = token.strip()
    if not token:
        raise TokenError(
            "DISCORD_TOKEN is empty; copy the token from the Bot page of your application"
        )
    if token.lower().startswith("bot "):
        raise TokenError(
            "DISCORD_TOKEN starts with 'Bot '; remove that prefix, keep only the token"
        )
    if token[0] in "\"'" or token[-1] in "\"'":
        raise TokenError("DISCORD_TOKEN is wrapped in quotes inside the value; remove them")
    parts = token.split(".")
    if len(parts) != 3 or not all(_PART.match(part) for part in parts):
        hint = (
            "it looks like the OAuth2 client secret, not the bot token"
            if len(parts) == 1 and len(token) == 32
            else "a bot token has three dot-separated parts"
        )
        raise TokenError(
            f"DISCORD_TOKEN is malformed ({hint}); reset and copy it from Developer Portal → Bot"
        )
    first = parts[0]
    try:
        decoded = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if not _SNOWFLAKE.match(decoded):
        raise TokenError(
            "DISCORD_TOKEN is malformed (its first part does not encode an application id); "
            "reset and copy it from Developer Portal → Bot"
        )
    return int(decoded)


def parse_application_id(text: str) -> int:
    """An application id typed by the operator (`--application-id`), checked to be a snowflake."""
    text = text.strip()
    if not _SNOWFLAKE.match(text):
        raise TokenError(
            f"--application-id {text!r} is not an application id; copy the Application ID "
            "from the General Information page of the Developer Portal"
        )
    return int(text)


def required_permissions() -> discord.Permissions:
    """Exactly the permissions the bot uses, and why each one."""
    import discord  # imported here so `doctor`, which shares the token helpers, starts fast

    return discord.Permissions(
        # See the channel a /pokemon command came from, to post results there.
        view_channel=True,
        # Post results to the channel when an interaction's 15-minute token has run out, and
        # post 🔁 variations as replies.
        send_messages=True,
        # The result embed: prompt, seed, steps, time and remaining quota.
        embed_links=True,
        # The generated PNG.
        attach_files=True,
        # Put 🔁 under each result so users can ask for a variation with one click.
        add_reactions=True,
        # Find the result message a 🔁 reaction was added to, and reply to it.
        read_message_history=True,
        # Only to take back a user's 🔁 reaction once it has been handled (queued, refused or
        # a duplicate), so it can be pressed again; the bot never edits other people's messages.
        manage_messages=True,
    )


def invite_url(application_id: int) -> str:
    """`https://discord.com/oauth2/authorize?client_id=ID&scope=bot+applications.commands&permissions=N`."""
    import discord

    return discord.utils.oauth_url(
        application_id, permissions=required_permissions(), scopes=SCOPES
    )


class _TokenOnly(BaseSettings):
    """Reads just DISCORD_TOKEN (environment, then `.env`), so a bad unrelated setting does not matter."""

    model_config = Settings.model_config
    discord_token: SecretStr | None = None


def load_token() -> str | None:
    """DISCORD_TOKEN from the environment or `.env`, as `Settings` would read it; None if unset."""
    secret = _TokenOnly().discord_token
    return secret.get_secret_value() if secret is not None else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--application-id",
        metavar="ID",
        help="the Application ID (default: read from DISCORD_TOKEN)",
    )


def main(args: argparse.Namespace) -> int:
    """Print the invite URL; a missing or malformed token is one line and exit status 2."""
    try:
        if args.application_id is not None:
            application_id = parse_application_id(args.application_id)
        else:
            token = load_token()
            if not token:
                raise TokenError(
                    "DISCORD_TOKEN is not set; put it in .env or pass --application-id ID"
                )
            application_id = application_id_from_token(token)
    except TokenError as exc:
        raise CliError(str(exc)) from None
    print(invite_url(application_id))
    return 0
