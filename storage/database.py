"""One aiosqlite connection, its pragmas, and the unit-of-work runner with busy retries.

aiosqlite runs every call on one thread per connection, but a transaction spans several
awaits; the asyncio lock keeps two coroutines' transactions from interleaving on the shared
connection. Busy/locked errors (another connection or process holds the write lock longer
than `busy_timeout`) are retried a bounded number of times with exponential backoff; any other
`sqlite3` error is rolled back and raised as a one-line `StorageError`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from storage import schema
from storage.errors import StorageError

log = logging.getLogger(__name__)

T = TypeVar("T")
Params = Iterable[Any]

DEFAULT_BUSY_TIMEOUT_MS = 5000
DEFAULT_RETRIES = 5
DEFAULT_BACKOFF = 0.05
MAX_BACKOFF = 1.0


def is_busy(exc: BaseException) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED (any extended code): worth retrying."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text


def translate(exc: sqlite3.Error, path: object) -> StorageError:
    """Turn a sqlite3 error into one clear line that names the file and what to do."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if code is not None else None
    detail = str(exc) or type(exc).__name__
    if is_busy(exc):
        return StorageError(
            f"database {path} is busy: another connection held it too long ({detail})",
            code="busy",
        )
    if primary == sqlite3.SQLITE_FULL:
        return StorageError(
            f"database {path}: the disk is full or the database reached its size limit; "
            "free some space and try again",
            code="full",
        )
    if primary == sqlite3.SQLITE_READONLY:
        return StorageError(
            f"database {path} is read-only; check the file's permissions", code="readonly"
        )
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return StorageError(
            f"{path} is not a usable database ({detail}); restore it from a backup",
            code="corrupt",
        )
    if primary == sqlite3.SQLITE_CANTOPEN:
        return StorageError(f"cannot open database {path} ({detail})", code="cannot_open")
    if primary == sqlite3.SQLITE_IOERR:
        return StorageError(f"disk I/O error on database {path} ({detail})", code="io")
    if isinstance(exc, sqlite3.IntegrityError) or primary == sqlite3.SQLITE_CONSTRAINT:
        return StorageError(f"database constraint failed: {detail}", code="constraint")
    return StorageError(f"database error on {path}: {detail}")


class Tx:
    """The statements of one unit of work; only valid inside `Database.read`/`Database.write`."""

    __slots__ = ("_conn",)

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return list(await self._conn.execute_fetchall(sql, tuple(params)))

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def scalar(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        cursor = await self._conn.execute(sql, tuple(params))
        try:
            return cursor.rowcount
        finally:
            await cursor.close()

    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run one INSERT; returns the new row id."""
        cursor = await self._conn.execute(sql, tuple(params))
        try:
            rowid = cursor.lastrowid
        finally:
            await cursor.close()
        if rowid is None:  # pragma: no cover - an INSERT always sets it
            raise StorageError("insert returned no row id")
        return rowid


def _prepare_file(path: Path, busy_timeout_ms: int) -> Path:
    """Folders, WAL and migrations, on a plain connection in a worker thread (start-up only)."""
    path = path.expanduser()
    if path.is_dir():
        raise StorageError(f"database path {path} is a folder; name a file", code="cannot_open")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create the database folder {path.parent}: {exc.strerror or exc}",
            code="cannot_open",
        ) from exc
    conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_ms / 1000)
    try:
        mode = _switch_to_wal(conn, busy_timeout_ms / 1000)
        if mode.lower() != "wal":
            log.warning("database %s stays in journal mode %s (WAL unavailable)", path, mode)
        schema.check_not_newer(schema.user_version(conn), path)
        schema.migrate(conn)
    finally:
        conn.close()
    return path


def _switch_to_wal(conn: sqlite3.Connection, timeout: float) -> str:
    """Ask for WAL, retrying busy answers until `timeout`; returns the mode SQLite chose.

    Changing the journal mode needs the file to itself, and SQLite answers SQLITE_BUSY at
    once, without calling the busy handler, when another connection opening the same new
    file holds a lock that would otherwise deadlock. Two processes starting on a fresh
    database hit this about one time in ten, so the busy answer is retried here.
    """
    deadline = time.monotonic() + timeout
    delay = DEFAULT_BACKOFF / 5
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF)


class Database:
    """The storage layer's connection: open with `await Database.open(path)`."""

    def __init__(
        self, conn: aiosqlite.Connection, path: Path, *, retries: int, backoff: float
    ) -> None:
        self._conn = conn
        self.path = path
        self._retries = retries
        self._backoff = backoff
        self._lock = asyncio.Lock()
        self._closed = False
        self.busy_retries = 0  # how many times a busy database was retried (for doctor/tests)

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
    ) -> Database:
        """Create parent folders, switch to WAL, migrate, and connect with the pragmas set."""
        try:
            path = await asyncio.to_thread(_prepare_file, Path(path), busy_timeout_ms)
            conn = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise translate(exc, path) from exc
        db = cls(conn, path, retries=retries, backoff=backoff)
        try:
            conn.row_factory = sqlite3.Row
            # PRAGMA values cannot be bound; busy_timeout is an int we validate here.
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute("PRAGMA synchronous = NORMAL")
            version = await db.read(lambda tx: tx.scalar("PRAGMA user_version"))
            schema.check_not_newer(int(version), path)
        except BaseException:
            await conn.close()
            raise
        return db

    @property
    def connection(self) -> aiosqlite.Connection:
        """The raw connection, for pragmas in tests and diagnostics; use read/write otherwise."""
        return self._conn

    async def read(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        """Run read-only statements (no explicit transaction)."""
        return await self._run(work, write=False)

    async def write(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        """Run `work` in one `BEGIN IMMEDIATE` transaction; committed only if it returns."""
        return await self._run(work, write=True)

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        async with self._lock:
            self._closed = True
            await self._conn.close()

    async def _run(self, work: Callable[[Tx], Awaitable[T]], *, write: bool) -> T:
        async with self._lock:
            if self._closed:
                # Work that outlives shutdown (a delivery after the drain) gets the error the
                # bot handles, not aiosqlite's bare ValueError.
                raise StorageError(f"database {self.path} is closed", code="closed")
            attempt = 0
            while True:
                try:
                    if write:
                        await self._conn.execute("BEGIN IMMEDIATE")
                    result = await work(Tx(self._conn))
                    if write:
                        await self._conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    await self._rollback()
                    if is_busy(exc) and attempt < self._retries:
                        attempt += 1
                        self.busy_retries += 1
                        delay = min(self._backoff * 2 ** (attempt - 1), MAX_BACKOFF)
                        log.warning(
                            "database %s busy (%s); retry %s/%s in %.2fs",
                            self.path,
                            exc,
                            attempt,
                            self._retries,
                            delay,
                        )
                        await asyncio.sleep(delay)
                        continue
                    raise translate(exc, self.path) from exc
                except BaseException:
                    await self._rollback()
                    raise
                else:
                    return result

    async def _rollback(self) -> None:
        # SQLite may already have rolled back (e.g. after SQLITE_FULL); that is fine.
        # Queued on the connection's thread even if this task is being cancelled, so it runs
        # before anything another coroutine queues after the lock is released.
        try:
            await self._conn.rollback()
        except (sqlite3.Error, ValueError):
            log.debug("rollback failed on %s", self.path, exc_info=True)
