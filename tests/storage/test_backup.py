"""Online backups with the SQLite backup API, checked with PRAGMA integrity_check."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from storage import Storage, StorageError
from storage.backup import backup
from storage.schema import latest_version, migrate
from tests.storage.conftest import make_job

SAFETY_SECONDS = 30.0


def create_database(path: Path, jobs: int = 3) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    migrate(conn)
    for i in range(jobs):
        insert_job(conn, i)
    conn.close()


def insert_job(conn: sqlite3.Connection, seed: int) -> None:
    conn.execute(
        "INSERT INTO jobs (user_id, guild_id, channel_id, request, created_at) "
        "VALUES (?, ?, ?, json_object('prompt', 'フシギダネ', 'seed', ?), ?)",
        (1, 2, 3, seed, 1740830400.0 + seed),
    )


def corrupt_database(path: Path) -> None:
    """A readable file whose index disagrees with its table: integrity_check reports it."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (x INTEGER PRIMARY KEY, y TEXT)")
    conn.execute("CREATE INDEX t_y ON t (y)")
    conn.executemany("INSERT INTO t (y) VALUES (?)", [(str(i),) for i in range(50)])
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("UPDATE sqlite_schema SET sql = 'CREATE INDEX t_y ON t (x)' WHERE name = 't_y'")
    conn.execute("PRAGMA writable_schema = OFF")
    conn.close()


def count_jobs(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    finally:
        conn.close()


def test_backup_copies_every_row_and_passes_the_integrity_check(tmp_path: Path) -> None:
    src, dest = tmp_path / "bot.sqlite3", tmp_path / "backups" / "copy.sqlite3"
    create_database(src, jobs=7)
    report = backup(src, dest)
    assert report.ok
    assert report.integrity == ("ok",)
    assert (report.dest, report.jobs, report.schema_version) == (dest, 7, latest_version())
    assert report.size_bytes == dest.stat().st_size > 0
    assert count_jobs(dest) == 7
    conn = sqlite3.connect(dest)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # self-contained
    conn.close()
    assert not (tmp_path / "backups" / "copy.sqlite3.partial").exists()


async def test_backup_includes_committed_rows_still_in_the_wal_of_an_open_store(
    tmp_path: Path,
) -> None:
    path = tmp_path / "live.sqlite3"
    store = await Storage.open(path)
    try:
        assert (await store.admit(make_job())).admitted
        wal_exists = await asyncio.to_thread(Path(f"{path}-wal").exists)
        assert wal_exists
        report = await asyncio.to_thread(backup, path, tmp_path / "copy.sqlite3")
    finally:
        await store.close()
    assert report.ok
    assert report.jobs == 1


def test_backup_while_another_connection_keeps_inserting(tmp_path: Path) -> None:
    src, dest = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    create_database(src, jobs=200)
    started, stop = threading.Event(), threading.Event()
    inserted = [0]

    def writer() -> None:
        conn = sqlite3.connect(src, isolation_level=None, timeout=SAFETY_SECONDS)
        try:
            while not stop.is_set():
                insert_job(conn, 1000 + inserted[0])
                inserted[0] += 1
                if inserted[0] == 20:
                    started.set()
        finally:
            conn.close()

    thread = threading.Thread(target=writer, name="writer", daemon=True)
    thread.start()
    try:
        assert started.wait(SAFETY_SECONDS)
        before = count_jobs(src)
        report = backup(src, dest)
        after_backup = count_jobs(src)
    finally:
        stop.set()
        thread.join(SAFETY_SECONDS)
    assert report.ok
    assert before <= report.jobs <= after_backup  # type: ignore[operator]
    assert count_jobs(dest) == report.jobs
    assert count_jobs(src) == 200 + inserted[0], "the writer lost rows during the backup"


def test_backup_into_an_existing_folder_writes_a_dated_file(tmp_path: Path) -> None:
    src = tmp_path / "bot.sqlite3"
    create_database(src)
    folder = tmp_path / "backups"
    folder.mkdir()
    report = backup(src, folder)
    assert report.dest.parent == folder
    assert report.dest.name.startswith("bot-")
    assert report.dest.suffix == ".sqlite3"
    assert report.dest.is_file()


def test_existing_destination_is_refused_unless_overwriting(tmp_path: Path) -> None:
    src, dest = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    create_database(src, jobs=1)
    dest.write_text("keep me")
    with pytest.raises(StorageError, match="already exists"):
        backup(src, dest)
    assert dest.read_text() == "keep me"
    assert backup(src, dest, overwrite=True).ok
    assert count_jobs(dest) == 1


def test_backup_onto_its_own_source_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "bot.sqlite3"
    create_database(src, jobs=2)
    with pytest.raises(StorageError, match="must not overwrite the database itself"):
        backup(src, src, overwrite=True)
    assert count_jobs(src) == 2


def test_missing_source_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no database at"):
        backup(tmp_path / "nothing.sqlite3", tmp_path / "copy.sqlite3")
    assert not (tmp_path / "copy.sqlite3").exists()


def test_source_that_is_not_a_database_is_a_storage_error_and_leaves_no_file(
    tmp_path: Path,
) -> None:
    src = tmp_path / "notes.txt"
    src.write_text("not sqlite\n" * 500)
    with pytest.raises(StorageError, match="not a usable database"):
        backup(src, tmp_path / "copy.sqlite3")
    assert list(tmp_path.iterdir()) == [src]


def test_corrupt_source_gives_a_report_with_failed_integrity(tmp_path: Path) -> None:
    src = tmp_path / "broken.sqlite3"
    corrupt_database(src)
    report = backup(src, tmp_path / "copy.sqlite3")
    assert not report.ok
    assert any("missing from index" in line for line in report.integrity)
    assert report.jobs is None
