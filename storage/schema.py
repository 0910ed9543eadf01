"""Numbered SQL migrations (`migrations/NNNN_name.sql`), tracked with `PRAGMA user_version`.

Runs on a plain `sqlite3` connection (in a worker thread at start-up) so tests can build any
earlier version of the schema with `migrate(conn, target=N)`.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from storage.errors import StorageError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered migration file."""

    version: int
    name: str
    sql: str


@cache
def migrations(directory: Path = MIGRATIONS_DIR) -> tuple[Migration, ...]:
    """Every migration in order. Numbers must run 1, 2, 3, ... and each file needs a header."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise StorageError(
                f"migration {path.name}: name it NNNN_name.sql", code="bad_migration"
            )
        sql = path.read_text("utf-8")
        if not sql.startswith("--"):
            raise StorageError(
                f"migration {path.name}: start with a header comment", code="bad_migration"
            )
        found.append(Migration(int(match.group(1)), match.group(2), sql))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise StorageError(
                f"migration {migration.version:04d}_{migration.name}.sql: expected number "
                f"{expected:04d} (migrations must be numbered without gaps)",
                code="bad_migration",
            )
    return tuple(found)


def latest_version() -> int:
    """The schema version this code writes."""
    return len(migrations())


def split_statements(sql: str) -> list[str]:
    """Split a script into complete statements (triggers' BEGIN…END stay whole)."""
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if _has_code(buffer):
                statements.append(buffer.strip())
            buffer = ""
    if _has_code(buffer):
        raise StorageError("migration ends with an incomplete statement", code="bad_migration")
    return statements


def _has_code(text: str) -> bool:
    code = "".join(line for line in text.splitlines() if not line.strip().startswith("--")).strip()
    return code not in ("", ";")


def user_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the file (0 for a new database)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check_not_newer(version: int, path: object = None, *, latest: int | None = None) -> None:
    """Refuse a database written by newer code: its schema may mean things we don't know."""
    latest = latest_version() if latest is None else latest
    if version > latest:
        where = f" {path}" if path is not None else ""
        raise StorageError(
            f"database{where} has schema version {version}, newer than this code's {latest}; "
            "upgrade pokemon-bot or restore a backup made by this version",
            code="schema_too_new",
        )


def migrate(
    conn: sqlite3.Connection, *, target: int | None = None, directory: Path = MIGRATIONS_DIR
) -> list[int]:
    """Apply pending migrations up to `target` (default: latest), each in one transaction.

    `conn` must be in autocommit mode (`isolation_level=None`). Returns the versions applied.
    Safe against another process migrating at the same time: the version is re-read under
    the write lock. Foreign keys are off while migrations run (a table rebuild drops and
    renames tables, which enforcement would turn into cascades), checked with
    `PRAGMA foreign_key_check` before each commit, and restored afterwards.
    """
    available = migrations(directory)
    target = len(available) if target is None else target
    if not 0 <= target <= len(available):
        raise ValueError(f"target must be between 0 and {len(available)}, not {target}")
    check_not_newer(user_version(conn), latest=len(available))
    # The pragma is a no-op inside a transaction, and migrate() needs autocommit anyway.
    foreign_keys = int(conn.execute("PRAGMA foreign_keys").fetchone()[0])
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        return _apply(conn, available, target)
    finally:
        if foreign_keys:
            conn.execute("PRAGMA foreign_keys = ON")


def _apply(conn: sqlite3.Connection, available: tuple[Migration, ...], target: int) -> list[int]:
    applied: list[int] = []
    for migration in available[:target]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = user_version(conn)
            check_not_newer(current, latest=len(available))
            if current >= migration.version:
                conn.execute("ROLLBACK")
                continue
            for statement in split_statements(migration.sql):
                conn.execute(statement)
            broken = conn.execute("PRAGMA foreign_key_check").fetchone()
            if broken is not None:
                raise StorageError(
                    f"migration {migration.version:04d}_{migration.name}.sql leaves a broken "
                    f"reference in table {broken[0]} (row {broken[1]}); nothing was changed",
                    code="bad_migration",
                )
            # PRAGMA takes no bound parameters; the value is an int from our own file name.
            conn.execute(f"PRAGMA user_version = {int(migration.version)}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(migration.version)
        log.info("applied migration %04d_%s", migration.version, migration.name)
    return applied
