"""`pokemon-bot forget-user USER_ID`: delete one user's data, as `/privacy` does, for operators.

One storage operation, the one `/privacy` uses too (`PrivacyRepository.forget_user`): their
queued and running jobs are cancelled, their jobs and limits deleted and their id removed from
the audit logs, in one transaction. A bot running meanwhile notices within a second or two: a
job of theirs still waiting leaves its queue, never drawn; one its generator is already
drawing may be drawn, but it is never posted (the bot reads the job's row before it posts).
Exits 0, or 2 on bad input.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bot.cli import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `pokemon-bot forget-user`."""
    parser.add_argument("user_id", metavar="USER_ID", help="the Discord user id (a number)")
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help="database (default: POKEMON_DB from the environment or .env)",
    )


def _user_id(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 2**63:
        raise CliError(f"{text!r} is not a Discord user id (a positive whole number)")
    return int(text)


async def forget(db: Path, user_id: int) -> tuple[int, int]:
    """Cancel the user's pending jobs, then delete their data: (jobs cancelled, rows deleted)."""
    from storage import Storage

    async with await Storage.open(db) as store:
        forgotten = await store.privacy.forget_user(user_id)
    return len(forgotten.cancelled), forgotten.deleted


def main(args: argparse.Namespace) -> int:
    user_id = _user_id(args.user_id)
    from bot.commands_cli.backup import database_path

    db = database_path(args)
    if not db.exists():
        raise CliError(f"no database at {db.resolve()}")
    cancelled, deleted = asyncio.run(forget(db, user_id))
    print(f"user {user_id}: {cancelled} queued jobs cancelled, {deleted} rows deleted from {db}")
    return 0
