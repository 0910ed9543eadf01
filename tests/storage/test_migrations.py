"""Schema migrations on real SQLite files: fresh, upgrade from every version, refusals."""

from __future__ import annotations

import json
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


async def test_stores_opening_a_new_file_at_once_all_open_and_migrate_it_once(
    tmp_path: Path,
) -> None:
    """Switching a fresh file to WAL answers SQLITE_BUSY at once (no busy handler) to a
    racing opener about one time in ten; twenty fresh files with four openers each make
    that near-certain, and every opener must still get a migrated store."""
    import asyncio

    for attempt in range(20):
        path = tmp_path / f"race-{attempt}.sqlite3"
        stores = await asyncio.gather(
            *(Storage.open(path) for _ in range(4)), return_exceptions=True
        )
        opened = [store for store in stores if isinstance(store, Storage)]
        try:
            assert len(opened) == len(stores), [s for s in stores if s not in opened]
            for store in opened:
                assert await store.db.read(lambda tx: tx.scalar("PRAGMA user_version")) == LATEST
        finally:
            for store in opened:
                await store.close()


# --- 0003: the request as one JSON object ---------------------------------------------------

_V2_COLUMNS = (
    "id, user_id, guild_id, channel_id, prompt, negative_prompt, seed, steps, guidance, width, "
    "height, scheduler, locale, state, error_code, fault, created_at, started_at, finished_at, "
    "interaction_expires_at, progress_message_id, result_message_id, parent_job_id, "
    "reply_to_message_id"
)
_KEPT = (
    "id, user_id, guild_id, channel_id, locale, state, error_code, fault, created_at, "
    "started_at, finished_at, interaction_expires_at, progress_message_id, result_message_id, "
    "parent_job_id, reply_to_message_id"
)
_STATES = [
    ("queued", None, None),
    ("running", None, None),
    ("done", None, None),
    ("failed", "out_of_memory", "ours"),
    ("failed", "nsfw", "user"),
    ("cancelled", None, None),
]
_PROMPTS = ["ヒトカゲ", "", 'a "quoted" \\ back\nslash', "🔥ドラゴン🐉", "x" * 3000]


def _v2_rows(count: int) -> list[tuple[object, ...]]:
    """`count` rows in the version-2 columns, varied in every column that can vary."""
    rows: list[tuple[object, ...]] = []
    for i in range(1, count + 1):
        state, error_code, fault = _STATES[i % len(_STATES)]
        created = 1740830400.0 + i * 37.25
        rows.append(
            (
                i,
                1000 + i % 7,
                None if i % 5 == 0 else 2000 + i % 3,
                None if i % 11 == 0 else 3000 + i,
                _PROMPTS[i % len(_PROMPTS)],
                "" if i % 2 else "ぼやけた",
                [0, 42, 2**32 - 1, 2**63 - 1][i % 4],
                1 + i % 50,
                [7.5, 7.0, 12.25, 1.0][i % 4],
                [512, 768, 64][i % 3],
                [512, 768][i % 2],
                ["dpmpp-2m", "lms"][i % 2],
                ["en", "ja"][i % 2],
                state,
                error_code,
                fault,
                created,
                None if state == "queued" else created + 1,
                created + 9 if state in ("done", "failed", "cancelled") else None,
                None if i % 3 else created + 900,
                None if i % 4 else 10**17 + i,
                10**18 + i if state == "done" else None,
                i // 2 if i % 6 == 0 and i > 2 else None,
                None if i % 9 else 5 * 10**17 + i,
            )
        )
    return rows


def _jobs_index_sql(conn: sqlite3.Connection) -> dict[str, str]:
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'jobs' "
        "AND sql IS NOT NULL"
    ).fetchall()
    return dict(rows)


def test_0003_moves_a_full_version_2_table_into_request_json_keeping_every_row(
    tmp_path: Path,
) -> None:
    conn = connect(tmp_path / "v2.sqlite3")
    migrate(conn, target=2)
    rows = _v2_rows(300)
    conn.executemany(
        f"INSERT INTO jobs ({_V2_COLUMNS}) VALUES ({', '.join('?' * 24)})",
        rows,
    )
    old_indexes = _jobs_index_sql(conn)
    assert set(old_indexes) == {
        "jobs_user_created",
        "jobs_result_message",
        "jobs_pending",
        "jobs_guild_created",
        "jobs_created",
    }

    assert migrate(conn, target=3) == [3]

    columns = [row[1] for row in conn.execute("PRAGMA table_info(jobs)")]
    for gone in ("prompt", "negative_prompt", "seed", "steps", "guidance", "width", "height"):
        assert gone not in columns
    assert "scheduler" not in columns
    assert {"request", "images", "outcome", "cancelled_by"} <= set(columns)
    migrated = conn.execute(
        f"SELECT {_KEPT}, request, images, outcome, cancelled_by FROM jobs ORDER BY id"
    ).fetchall()
    assert len(migrated) == len(rows)
    for old, new in zip(rows, migrated, strict=True):
        (_, _, _, _, prompt, negative, seed, steps, guidance, width, height, scheduler) = old[:12]
        kept_old = old[:4] + old[12:]
        assert new[:16] == kept_old
        request = json.loads(new[16])
        assert request == {
            "prompt": prompt,
            "negative_prompt": negative,
            "seed": seed,
            "steps": steps,
            "guidance": guidance,
            "width": width,
            "height": height,
            "scheduler": scheduler,
        }
        assert type(request["guidance"]) is float
        assert type(request["seed"]) is int
        assert new[17:] == (1, None, None)

    # Every index of 0001/0002 is back as it was, plus the progress-message lookup.
    new_indexes = _jobs_index_sql(conn)
    assert {name: new_indexes[name] for name in old_indexes} == old_indexes
    assert set(new_indexes) - set(old_indexes) == {"jobs_progress_message"}
    # The table is STRICT, its foreign key survived the rename, and nothing dangles.
    assert conn.execute("SELECT strict FROM pragma_table_list WHERE name = 'jobs'").fetchone() == (
        1,
    )
    fks = conn.execute(
        'SELECT "table", "from", "to", on_delete FROM pragma_foreign_key_list(\'jobs\')'
    )
    assert fks.fetchall() == [("jobs", "parent_job_id", "id", "SET NULL")]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    assert "jobs_new" not in tables
    conn.close()


def test_0003_keeps_parent_links_when_foreign_keys_are_on_and_they_still_act_afterwards(
    tmp_path: Path,
) -> None:
    # With enforcement on, DROP TABLE jobs would null every parent_job_id copied to the new
    # table (ON DELETE SET NULL); migrate() turns it off for the rebuild and back on after.
    conn = connect(tmp_path / "fk.sqlite3")
    migrate(conn, target=2)
    conn.executemany(
        f"INSERT INTO jobs ({_V2_COLUMNS}) VALUES ({', '.join('?' * 24)})",
        _v2_rows(30),
    )
    links = conn.execute("SELECT id, parent_job_id FROM jobs WHERE parent_job_id IS NOT NULL")
    before = links.fetchall()
    assert before
    conn.execute("PRAGMA foreign_keys = ON")

    migrate(conn)

    assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
    after = conn.execute("SELECT id, parent_job_id FROM jobs WHERE parent_job_id IS NOT NULL")
    assert after.fetchall() == before
    child, parent = before[0]
    conn.execute("DELETE FROM jobs WHERE id = ?", (parent,))
    assert conn.execute("SELECT parent_job_id FROM jobs WHERE id = ?", (child,)).fetchone() == (
        None,
    )
    conn.close()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("request", "[1, 2]"),
        ("request", "not json"),
        ("request", '"ピカチュウ"'),
        ("images", 0),
        ("images", 17),
        ("outcome", "{broken"),
        ("outcome", "[1]"),
    ],
)
def test_the_rebuilt_jobs_table_checks_its_json_and_picture_columns(
    tmp_path: Path, column: str, value: object
) -> None:
    conn = connect(tmp_path / "checks.sqlite3")
    migrate(conn)
    values = {"request": '{"prompt": "ok"}', "images": 1, "outcome": None, column: value}
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
        conn.execute(
            "INSERT INTO jobs (user_id, request, images, outcome, created_at) "
            "VALUES (1, ?, ?, ?, 0.0)",
            (values["request"], values["images"], values["outcome"]),
        )
    conn.close()


def test_a_migration_that_leaves_a_broken_reference_is_rolled_back(tmp_path: Path) -> None:
    folder = tmp_path / "dangling"
    folder.mkdir()
    (folder / "0001_first.sql").write_text(
        "-- first\nCREATE TABLE p (id INTEGER PRIMARY KEY) STRICT;\n"
        "CREATE TABLE c (id INTEGER PRIMARY KEY, p INTEGER REFERENCES p (id)) STRICT;\n"
    )
    (folder / "0002_dangling.sql").write_text("-- dangling\nINSERT INTO c VALUES (1, 99);\n")
    conn = connect(tmp_path / "db.sqlite3")
    with pytest.raises(StorageError, match="broken reference in table c") as caught:
        migrate(conn, directory=folder)
    assert caught.value.code == "bad_migration"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("SELECT COUNT(*) FROM c").fetchone()[0] == 0
    conn.close()
