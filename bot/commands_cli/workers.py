"""`pokemon-bot workers`: list the generation workers whose heartbeat is live in Redis."""

from __future__ import annotations

import argparse
import asyncio
import time

from pydantic import ValidationError

from bot.cli import CliError
from bot.commands_cli.run import settings_error_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prefix", default=None, help="Redis key prefix (default POKEMON_REDIS_PREFIX, pokemon)"
    )


def main(args: argparse.Namespace) -> int:
    from bot.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        raise CliError(settings_error_line(exc)) from None
    if settings.pokemon_redis_url is None:
        raise CliError("POKEMON_REDIS_URL is not set; workers register in Redis")
    lines = asyncio.run(
        list_workers(
            settings.pokemon_redis_url.get_secret_value(),
            args.prefix or settings.pokemon_redis_prefix,
        )
    )
    print("\n".join(lines))
    return 0


async def list_workers(url: str, prefix: str) -> list[str]:
    """One line per live worker (or one saying there is none). Raises CliError when Redis
    cannot be reached."""
    from generation.errors import one_line
    from generation.streams import Keys, connect, read_workers, redact_url, redis_errors

    client = connect(url)
    try:
        workers = await read_workers(client, Keys(prefix))
    except redis_errors() as exc:
        raise CliError(f"cannot reach Redis at {redact_url(url)}: {one_line(exc)}") from None
    finally:
        await client.aclose()
    if not workers:
        return ["no generation worker is online"]
    now = time.time()
    lines = [f"{len(workers)} worker{'s' if len(workers) != 1 else ''} online:"]
    lines.extend(
        f"{w.name}  device={w.device}  model={w.model}  batch={w.max_batch}  "
        f"running={w.running}  done={w.jobs_done}  up={now - w.started_at:.0f}s  "
        f"seen={now - w.seen_at:.1f}s ago"
        for w in workers
    )
    return lines
