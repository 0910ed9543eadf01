"""Is the database file usable, without changing it? What `pokemon-bot doctor` asks storage.

The file itself is only opened read-write for a moment (BEGIN IMMEDIATE, then ROLLBACK: it
proves the write lock can be taken and writes nothing). Everything else happens on a copy made
with SQLite's backup API: its schema version, the migrations `run` would apply, and
`PRAGMA integrity_check`.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from storage.errors import StorageError
from storage.schema import latest_version, migrate, user_version

DatabaseState = Literal[
    "ok",  # exists, writable, migrates cleanly, integrity ok
    "new",  # does not exist yet and can be created
    "cannot_create",  # does not exist and its folder cannot be made or written
    "is_folder",  # the path is a folder
    "unopenable",  # exists but cannot be opened for writing (not a database, read-only, locked)
    "too_new",  # written by a newer pokemon-bot
    "broken",  # the migrations fail on it, or the integrity check finds damage
]


@dataclass(frozen=True, slots=True)
class DatabaseCheck:
    """What `check_database` found. `detail` is one line when the state is a problem."""

    path: Path  # absolute
    state: DatabaseState
    version: int = 0  # the file's schema version (0 when new)
    latest: int = 0  # this code's schema version, which `run` migrates to
    integrity: tuple[str, ...] = ()  # PRAGMA integrity_check on the copy: ("ok",) when sound
    detail: str = ""


def check_database(path: str | Path) -> DatabaseCheck:
    """Check the database at `path` (relative to the working folder) and change nothing."""
    path = Path(path).expanduser().absolute()
    latest = latest_version()
    if path.is_dir():
        return DatabaseCheck(path, "is_folder", latest=latest, detail=f"{path} is a folder")
    if not path.exists():
        existing = _first_existing(path.parent)
        if not existing.is_dir():
            return DatabaseCheck(
                path, "cannot_create", latest=latest, detail=f"{existing} is not a folder"
            )
        if not os.access(existing, os.W_OK | os.X_OK):
            return DatabaseCheck(
                path, "cannot_create", latest=latest, detail=f"{existing} is not writable"
            )
        return DatabaseCheck(path, "new", latest=latest)
    with tempfile.TemporaryDirectory(prefix="pokemon-db-check-") as tmp:
        copy = Path(tmp) / "check.sqlite3"
        try:
            version = _copy_if_writable(path, copy)
        except sqlite3.Error as exc:
            return DatabaseCheck(path, "unopenable", latest=latest, detail=_first_line(exc))
        if version > latest:
            return DatabaseCheck(
                path,
                "too_new",
                version=version,
                latest=latest,
                detail=f"schema version {version}, newer than this code's {latest}",
            )
        conn = sqlite3.connect(copy, isolation_level=None)
        try:
            try:
                migrate(conn)
            except (sqlite3.Error, StorageError) as exc:
                return DatabaseCheck(
                    path,
                    "broken",
                    version=version,
                    latest=latest,
                    detail=f"the migrations to v{latest} fail on it: {_first_line(exc)}",
                )
            integrity = tuple(str(row[0]) for row in conn.execute("PRAGMA integrity_check"))
            migrated = user_version(conn)
        except sqlite3.Error as exc:
            return DatabaseCheck(
                path, "broken", version=version, latest=latest, detail=_first_line(exc)
            )
        finally:
            conn.close()
    if integrity != ("ok",):
        return DatabaseCheck(
            path,
            "broken",
            version=version,
            latest=migrated,
            integrity=integrity,
            detail=f"the integrity check found {len(integrity)} problem(s): {integrity[0]}",
        )
    return DatabaseCheck(path, "ok", version=version, latest=migrated, integrity=integrity)


def _first_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def _copy_if_writable(path: Path, copy: Path) -> int:
    """Prove `path` is writable, copy it to `copy`, and return its schema version.

    BEGIN IMMEDIATE takes the write lock and ROLLBACK releases it, so nothing is written. One
    read-write connection (closed last) also lets SQLite tidy its -wal/-shm files as usual.
    """
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=5.0)
    try:
        conn.isolation_level = None
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        version = user_version(conn)
        target = sqlite3.connect(copy)
        try:
            conn.backup(target)
        finally:
            target.close()
        return version
    finally:
        conn.close()


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]
