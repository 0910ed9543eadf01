"""`pokemon-bot run`: the Discord bot (the default subcommand)."""

from __future__ import annotations

import argparse
import asyncio

from pydantic import ValidationError

from bot.cli import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level",
        default=None,
        help="override POKEMON_LOG_LEVEL (DEBUG, INFO, WARNING, ERROR)",
    )


def settings_error_line(exc: ValidationError) -> str:
    """The first problem of a settings validation error, as one line naming the variable."""
    first = exc.errors()[0]
    name = ".".join(str(part) for part in first.get("loc", ())).upper() or "settings"
    return f"{name}: {first.get('msg', 'invalid value')}"


def main(args: argparse.Namespace) -> int:
    from bot.commands_cli.first_run import ensure_token
    from bot.commands_cli.invite import TokenError, application_id_from_token
    from bot.settings import Settings

    # Before anything slow (discord.py, the model): a missing token is asked for on a
    # terminal, and a malformed one is refused here rather than after loading the model.
    ensure_token()
    try:
        settings = Settings()
    except ValidationError as exc:
        raise CliError(settings_error_line(exc)) from None
    if settings.discord_token is None or not settings.discord_token.get_secret_value().strip():
        raise CliError("DISCORD_TOKEN is not set; put the bot token in the environment or .env")
    try:
        application_id_from_token(settings.discord_token.get_secret_value())
    except TokenError as exc:
        raise CliError(str(exc)) from None

    from bot.app import StartupError, run_bot
    from bot.logging_setup import setup_logging
    from generation.streams import url_secrets

    redis = settings.pokemon_redis_url
    try:
        setup_logging(
            args.log_level or settings.pokemon_log_level,
            # The Redis password too; its URL without it is shown (generation.streams).
            secrets=[
                settings.discord_token.get_secret_value(),
                *url_secrets(redis.get_secret_value() if redis is not None else ""),
            ],
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        return asyncio.run(run_bot(settings))
    except StartupError as exc:
        raise CliError(str(exc)) from None
