"""`storage.check.check_database`: what doctor asks storage, on real SQLite files, changing nothing."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from storage.check import check_database
from storage.schema import latest_version, migrate
from tests.storage.test_backup import corrupt_database, create_database


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_current_database_is_ok_intact_and_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    create_database(db, jobs=3)
    before = digest(db)
    found = check_database(db)
    assert found.state == "ok"
    assert found.version == found.latest == latest_version()
    assert found.integrity == ("ok",)
    assert digest(db) == before


def test_relative_path_is_resolved_against_the_working_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    found = check_database(Path("data/bot.sqlite3"))
    assert found.path == tmp_path / "data" / "bot.sqlite3"
    assert found.path.is_absolute()
    assert found.state == "new"
    assert not (tmp_path / "data").exists()


def test_older_schema_is_migrated_on_a_copy_only(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(db, isolation_level=None)
    migrate(conn, target=1)
    conn.close()
    found = check_database(db)
    assert (found.state, found.version, found.latest) == ("ok", 1, latest_version())
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()


def test_damaged_file_fails_the_integrity_check(tmp_path: Path) -> None:
    db = tmp_path / "broken.sqlite3"
    corrupt_database(db)
    found = check_database(db)
    assert found.state == "broken"
    assert found.integrity != ("ok",)
    assert "integrity check found" in found.detail


def test_newer_schema_is_too_new(tmp_path: Path) -> None:
    db = tmp_path / "future.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    found = check_database(db)
    assert found.state == "too_new"
    assert "999" in found.detail


def test_not_a_database_and_folders_and_blocked_paths(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not SQLite" * 200)
    assert check_database(junk).state == "unopenable"
    assert check_database(tmp_path).state == "is_folder"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    found = check_database(blocker / "db.sqlite3")
    assert found.state == "cannot_create"
    assert "is not a folder" in found.detail
