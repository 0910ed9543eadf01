"""Busy databases are retried (bounded); other SQLite errors are one-line StorageErrors."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from storage import Storage, StorageError
from tests.storage.conftest import make_job

# How long a helper thread waits for the test to move on before giving up (a safety net
# against a hung test, never an assertion about speed).
SAFETY_SECONDS = 30.0


class WriteLockHolder:
    """A second, real connection that holds the write lock until told (or until `until()`)."""

    def __init__(self, path: Path, until: object = None) -> None:
        self.path = path
        self.until = until
        self.locked = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._run, name="lock-holder", daemon=True)

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO guild_limits (guild_id, images, period, updated_at) "
                "VALUES (?, ?, ?, ?)",
                (777, 1, "day", 0.0),
            )
            self.locked.set()
            if self.until is not None:
                while not self.until() and not self.release.wait(0.005):  # type: ignore[operator]
                    pass
            else:
                self.release.wait(SAFETY_SECONDS)
            conn.execute("COMMIT")
        finally:
            conn.close()

    async def __aenter__(self) -> WriteLockHolder:
        self.thread.start()
        assert await asyncio.to_thread(self.locked.wait, SAFETY_SECONDS)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        await asyncio.to_thread(self.thread.join, SAFETY_SECONDS)


async def test_busy_write_is_retried_until_the_other_connection_lets_go(
    open_store: object, db_path: Path
) -> None:
    store = await open_store(busy_timeout_ms=20, retries=1000, backoff=0.005)  # type: ignore[operator]
    # The holder commits only once it has seen this store give up at least once.
    async with WriteLockHolder(db_path, until=lambda: store.db.busy_retries >= 1):
        admission = await store.admit(make_job())
    assert admission.admitted
    assert store.db.busy_retries >= 1
    assert await store.jobs.get(admission.job.id) is not None  # type: ignore[union-attr]
    assert (await store.limits.effective(777, 1)).source == "guild"  # the other writer's row


async def test_busy_beyond_the_retry_budget_is_a_storage_error_and_the_store_recovers(
    open_store: object, db_path: Path
) -> None:
    store = await open_store(busy_timeout_ms=10, retries=2, backoff=0.001)  # type: ignore[operator]
    async with WriteLockHolder(db_path):
        with pytest.raises(StorageError, match="is busy") as caught:
            await store.admit(make_job())
    assert caught.value.code == "busy"
    assert store.db.busy_retries == 2
    assert await store.jobs.pending() == []
    assert (await store.admit(make_job())).admitted


async def test_disk_full_is_a_clear_storage_error_and_the_database_stays_usable(
    store: Storage,
) -> None:
    conn = store.db.connection
    pages = (await (await conn.execute("PRAGMA page_count")).fetchone())[0]
    # Real SQLITE_FULL: the file may not grow past its current size.
    await conn.execute(f"PRAGMA max_page_count = {int(pages)}")
    huge = "ピカチュウ" * 50_000
    with pytest.raises(StorageError, match="disk is full") as caught:
        await store.admit(make_job(prompt=huge))
    assert caught.value.code == "full"
    assert "\n" not in str(caught.value)
    assert await store.jobs.pending() == []

    await conn.execute("PRAGMA max_page_count = 1073741823")
    admission = await store.admit(make_job(prompt=huge))
    assert admission.admitted
    assert (await store.jobs.get(admission.job.id)).request["prompt"] == huge  # type: ignore[union-attr]


async def test_error_inside_a_transaction_rolls_it_back(store: Storage) -> None:
    async def half_then_fail(tx: object) -> None:
        await tx.execute(  # type: ignore[attr-defined]
            "INSERT INTO guild_limits (guild_id, images, period, updated_at) VALUES (?, ?, ?, ?)",
            (1, 1, "day", 0.0),
        )
        await tx.execute("INSERT INTO no_such_table VALUES (1)")  # type: ignore[attr-defined]

    with pytest.raises(StorageError, match="no such table"):
        await store.db.write(half_then_fail)
    assert (await store.limits.effective(1, 1)).source == "global"
    assert (await store.admit(make_job())).admitted


def test_is_busy_recognises_busy_and_locked_codes_only() -> None:
    from storage.database import is_busy

    conn = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.OperationalError) as caught:
        conn.execute("SELECT * FROM nowhere")
    conn.close()
    assert not is_busy(caught.value)
    locked = sqlite3.OperationalError("database is locked")
    assert is_busy(locked)


async def test_use_after_close_is_a_storage_error_not_a_bare_value_error(store: Storage) -> None:
    await store.close()
    with pytest.raises(StorageError, match="is closed") as caught:
        await store.jobs.pending()
    assert caught.value.code == "closed"
    with pytest.raises(StorageError):
        await store.admit(make_job())
    await store.close()  # still idempotent
