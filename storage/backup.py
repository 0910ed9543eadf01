"""Online backup: SQLite's backup API copies a consistent snapshot while the bot keeps writing,
then `PRAGMA integrity_check` runs on the copy. The copy is written next to its destination
under a temporary name and renamed into place, so a failed backup never leaves a half file
that looks like a good one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from storage.database import translate
from storage.errors import StorageError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class BackupReport:
    """What a backup did and what the integrity check said (`("ok",)` when sound)."""

    source: Path
    dest: Path
    pages: int
    size_bytes: int
    schema_version: int
    jobs: int | None
    integrity: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.integrity == ("ok",)


def _default_name(src: Path) -> str:
    return f"{src.stem}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.sqlite3"


def backup(src: str | Path, dest: str | Path, *, overwrite: bool = False) -> BackupReport:
    """Copy the live database `src` to `dest` (a file, or a folder to put a dated file in).

    Blocking: call it from a thread (`asyncio.to_thread`) inside the bot. Raises StorageError
    (one line) when the source is missing or unreadable or the destination is unusable.
    """
    src = Path(src).expanduser()
    dest = Path(dest).expanduser()
    if not src.is_file():
        raise StorageError(f"no database at {src}", code="cannot_open")
    if dest.is_dir():
        dest = dest / _default_name(src)
    if dest.exists() and dest.resolve() == src.resolve():
        raise StorageError(
            "the backup must not overwrite the database itself", code="backup_failed"
        )
    if dest.exists() and not overwrite:
        raise StorageError(
            f"{dest} already exists; choose another path or allow overwriting",
            code="backup_failed",
        )
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create the folder {dest.parent}: {exc.strerror or exc}", code="backup_failed"
        ) from exc
    partial = dest.with_name(dest.name + ".partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    try:
        report = _copy_and_check(src, partial, dest)
        os.replace(partial, dest)
    except sqlite3.Error as exc:
        _remove(partial)
        raise translate(exc, src) from exc
    except OSError as exc:
        _remove(partial)
        raise StorageError(
            f"cannot write the backup {dest}: {exc.strerror or exc}", code="backup_failed"
        ) from exc
    except BaseException:
        _remove(partial)
        raise
    log.info(
        "backup %s -> %s: %s pages, integrity %s",
        src,
        dest,
        report.pages,
        "ok" if report.ok else "FAILED",
    )
    return report


def _copy_and_check(src: Path, partial: Path, dest: Path) -> BackupReport:
    source = sqlite3.connect(src, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        target = sqlite3.connect(partial, isolation_level=None)
        try:
            # One step (pages=-1): a consistent snapshot under a read lock; in WAL mode the
            # bot's writers carry on meanwhile.
            source.backup(target, pages=-1)
            # The copy is a self-contained file: no -wal/-shm beside it.
            target.execute("PRAGMA journal_mode = DELETE")
            integrity = tuple(str(row[0]) for row in target.execute("PRAGMA integrity_check"))
            version = int(target.execute("PRAGMA user_version").fetchone()[0])
            pages = int(target.execute("PRAGMA page_count").fetchone()[0])
            jobs = None
            if target.execute(
                "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'jobs'"
            ).fetchone():
                with contextlib.suppress(sqlite3.DatabaseError):
                    jobs = int(target.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])
        finally:
            target.close()
    finally:
        source.close()
    return BackupReport(
        source=src,
        dest=dest,
        pages=pages,
        size_bytes=partial.stat().st_size,
        schema_version=version,
        jobs=jobs,
        integrity=integrity,
    )


def _remove(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + "-journal")):
        with contextlib.suppress(OSError):
            leftover.unlink()
