"""Schema migrations on real SQLite files: fresh, upgrade from every version, refusals."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from storage import Storage, StorageError
from storage.schema import latest_version, migrate, migrations, split_statements
from tests.storage.conftest import make_job

LATEST = latest_version()


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_migrations_are_numbered_from_one_without_gaps_and_have_header_comments() -> None:
    found = migrations()
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert len(found) >= 2, "a migration test needs at least two migrations to mean anything"
    assert all(m.sql.startswith("--") for m in found)


def test_split_statements_keeps_trigger_bodies_whole_and_drops_comments() -> None:
    sql = (
        "-- header\n"
        "CREATE TABLE a (x INTEGER) STRICT;\n"
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n"
        "  UPDATE a SET x = 1;\n"
        "  UPDATE a SET x = 2;\n"
        "END;\n"
        "-- trailing comment\n"
    )
    statements = split_statements(sql)
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER")
    assert statements[1].endswith("END;")


async def test_new_database_gets_parent_folders_wal_and_latest_version(
    tmp_path: Path,
) -> None:
    path = tmp_path / "deep" / "er" / "bot.sqlite3"
    store = await Storage.open(path)
    try:
        conn = store.db.connection
        assert (await (await conn.execute("PRAGMA journal_mode")).fetchone())[0] == "wal"
        assert (await (await conn.execute("PRAGMA foreign_keys")).fetchone())[0] == 1
        assert (await (await conn.execute("PRAGMA synchronous")).fetchone())[0] == 1  # NORMAL
        assert (await (await conn.execute("PRAGMA busy_timeout")).fetchone())[0] == 5000
        assert (await (await conn.execute("PRAGMA user_version")).fetchone())[0] == LATEST
    finally:
        await store.close()
    assert path.is_file()


def test_every_table_is_strict(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite3")
    migrate(conn)
    tables = conn.execute(
        "SELECT name, strict FROM pragma_table_list WHERE schema = 'main' "
        "AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    assert tables, "no tables were created"
    assert {name for name, strict in tables if not strict} == set()
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO guild_limits (guild_id, images, period, updated_at) VALUES (?, ?, ?, ?)",
            (1, "many", "day", 0.0),
        )
    conn.close()


def _insert_rows(conn: sqlite3.Connection, version: int) -> None:
    """One done job and one user limit, in the columns of schema `version` (1 or more)."""
    if version < 3:
        conn.execute(
            "INSERT INTO jobs (id, user_id, guild_id, channel_id, prompt, negative_prompt, seed, "
            "steps, guidance, width, height, scheduler, locale, state, created_at, finished_at, "
            "result_message_id) VALUES (7, 1001, 2001, 3001, 'ヒトカゲ', '', 5, 20, 7.5, 512, "
            "512, 'lms', 'ja', 'done', ?, ?, 9999)",
            (1740830400.0, 1740830410.0),
        )
    else:
        conn.execute(
            "INSERT INTO jobs (id, user_id, guild_id, channel_id, request, locale, state, "
            "created_at, finished_at, result_message_id) VALUES (7, 1001, 2001, 3001, "
            "json_object('prompt', 'ヒトカゲ', 'seed', 5), 'ja', 'done', ?, ?, 9999)",
            (1740830400.0, 1740830410.0),
        )
    conn.execute(
        "INSERT INTO user_limits (guild_id, user_id, images, period, updated_at, updated_by) "
        "VALUES (2001, 1001, 3, 'hour', 1740830400.0, 1)"
    )


@pytest.mark.parametrize("start_version", range(LATEST))
async def test_upgrade_from_every_earlier_version_keeps_existing_rows(
    tmp_path: Path, start_version: int, clock: object
) -> None:
    path = tmp_path / "old.sqlite3"
    conn = connect(path)
    assert migrate(conn, target=start_version) == list(range(1, start_version + 1))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == start_version
    if start_version >= 1:
        _insert_rows(conn, start_version)
    conn.close()

    store = await Storage.open(path, clock=clock)  # type: ignore[arg-type]
    try:
        version = await store.db.read(lambda tx: tx.scalar("PRAGMA user_version"))
        assert version == LATEST
        if start_version >= 1:
            job = await store.jobs.by_result_message(9999)
            assert job is not None
            assert (job.id, job.request["prompt"], job.request["seed"], job.state) == (
                7,
                "ヒトカゲ",
                5,
                "done",
            )
            limit = await store.limits.effective(2001, 1001)
            assert (limit.images, limit.period, limit.source) == (3, "hour", "user")
        # Everything the latest schema adds works on the upgraded file.
        await store.limits.set_user(2001, 1001, 5, "day", actor_id=1)
        assert [e.action for e in await store.limits.audit(2001)] == ["set_user"]
        admission = await store.admit(make_job(images=2))
        assert admission.admitted
        assert await store.blocklist.add(2001, "ミュウツー", actor_id=1)
        assert await store.blocklist.words(2001) == ["ミュウツー"]
    finally:
        await store.close()


def test_failed_migration_rolls_back_entirely_and_keeps_the_version(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_first.sql").write_text("-- first\nCREATE TABLE a (x INTEGER) STRICT;\n")
    (folder / "0002_broken.sql").write_text(
        "-- broken\nCREATE TABLE b (x INTEGER) STRICT;\nINSERT INTO missing VALUES (1);\n"
    )
    conn = connect(tmp_path / "db.sqlite3")
    with pytest.raises(sqlite3.OperationalError, match="missing"):
        migrate(conn, directory=folder)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    assert names == {"a"}, "table b from the failed migration must not survive"
    conn.close()


def test_migration_with_a_gap_in_numbers_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "gap"
    folder.mkdir()
    (folder / "0001_first.sql").write_text("-- first\nSELECT 1;\n")
    (folder / "0003_third.sql").write_text("-- third\nSELECT 1;\n")
    with pytest.raises(StorageError, match="expected number 0002"):
        migrations(folder)


async def test_database_newer_than_the_code_is_refused_with_a_clear_message(
    tmp_path: Path,
) -> None:
    path = tmp_path / "future.sqlite3"
    conn = connect(path)
    migrate(conn)
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    with pytest.raises(StorageError, match="newer than this code") as caught:
        await Storage.open(path)
    assert caught.value.code == "schema_too_new"
    assert str(LATEST + 1) in str(caught.value)
    conn = connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST + 1, "file was modified"
    conn.close()


async def test_file_that_is_not_a_database_is_refused_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    path.write_text("these are not the pages you are looking for\n" * 200)
    with pytest.raises(StorageError, match="not a usable database") as caught:
        await Storage.open(path)
    assert caught.value.code == "corrupt"
    assert "\n" not in str(caught.value)


async def test_folder_as_database_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="is a folder"):
        await Storage.open(tmp_path)


async def test_two_stores_opening_a_new_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    import asyncio

    path = tmp_path / "race.sqlite3"
    stores = await asyncio.gather(Storage.open(path), Storage.open(path))
    try:
        for store in stores:
            assert await store.db.read(lambda tx: tx.scalar("PRAGMA user_version")) == LATEST
    finally:
        for store in stores:
            await store.close()
