"""`pokemon-bot backup PATH`: an online copy of the database, then an integrity check on it.

Safe while the bot runs: SQLite's backup API takes a consistent snapshot and the bot's writes
carry on. Exits 0 when the copy is sound, 1 when its integrity check failed, 2 on bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bot.cli import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `pokemon-bot backup`."""
    parser.add_argument(
        "path",
        metavar="PATH",
        help="backup file to write, or a folder to put a dated copy in (a trailing / makes it)",
    )
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help="database to copy (default: POKEMON_DB from the environment or .env)",
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite PATH if it is an existing file"
    )


def database_path(args: argparse.Namespace) -> Path:
    if args.db is not None:
        return args.db
    from pydantic import ValidationError

    from bot.commands_cli.run import settings_error_line
    from bot.settings import Settings

    try:
        return Settings().pokemon_db
    except ValidationError as exc:
        raise CliError(f"invalid setting {settings_error_line(exc)}") from None


def _destination(text: str) -> Path:
    """PATH as given; `backups/` (a trailing slash) names a folder, made if it is missing."""
    path = Path(text).expanduser()
    if text.endswith(("/", os.sep)) and not path.is_dir():
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"cannot create the folder {path}: {exc.strerror or exc}") from None
    return path


def main(args: argparse.Namespace) -> int:
    """Copy the database to PATH and check the copy; print what was done."""
    from storage import StorageError
    from storage.backup import backup

    source = database_path(args)
    try:
        report = backup(source, _destination(args.path), overwrite=args.force)
    except StorageError as exc:
        raise CliError(str(exc)) from None
    jobs = "" if report.jobs is None else f", {report.jobs} jobs"
    print(
        f"backed up {report.source} to {report.dest}: {report.size_bytes:,} bytes, "
        f"{report.pages} pages, schema version {report.schema_version}{jobs}"
    )
    if report.ok:
        print("integrity check: ok")
        return 0
    print(f"integrity check FAILED on {report.dest}:", file=sys.stderr)
    for problem in report.integrity[:20]:
        print(f"  {problem}", file=sys.stderr)
    if len(report.integrity) > 20:
        print(f"  ... and {len(report.integrity) - 20} more", file=sys.stderr)
    return 1
