"""`pokemon-bot backup PATH`: real files, the real CLI entry point, exit codes and messages."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.cli import main
from tests.storage.test_backup import corrupt_database, count_jobs, create_database


def test_backup_writes_the_copy_and_reports_ok(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, dest = tmp_path / "bot.sqlite3", tmp_path / "out" / "copy.sqlite3"
    create_database(db, jobs=4)
    assert main(["backup", str(dest), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"backed up {db} to {dest}" in out
    assert "4 jobs" in out
    assert "integrity check: ok" in out
    assert count_jobs(dest) == 4


def test_database_path_comes_from_pokemon_db_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "from-env.sqlite3"
    create_database(db, jobs=2)
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout
    monkeypatch.setenv("POKEMON_DB", str(db))
    assert main(["backup", "copy.sqlite3"]) == 0
    assert f"backed up {db}" in capsys.readouterr().out
    assert count_jobs(tmp_path / "copy.sqlite3") == 2


def test_missing_database_is_one_line_and_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["backup", str(tmp_path / "c.sqlite3"), "--db", str(tmp_path / "none.sqlite3")])
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("pokemon-bot backup: no database at")
    assert "Traceback" not in err


def test_existing_destination_needs_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, dest = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    create_database(db, jobs=1)
    dest.write_text("old")
    assert main(["backup", str(dest), "--db", str(db)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["backup", str(dest), "--db", str(db), "--force"]) == 0
    assert count_jobs(dest) == 1


def test_failed_integrity_check_exits_1_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, dest = tmp_path / "broken.sqlite3", tmp_path / "copy.sqlite3"
    corrupt_database(db)
    assert main(["backup", str(dest), "--db", str(db)]) == 1
    captured = capsys.readouterr()
    assert "integrity check FAILED" in captured.err
    assert "missing from index" in captured.err
    assert "integrity check: ok" not in captured.out


def test_invalid_setting_is_one_line_and_exit_status_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("POKEMON_DEVICE", "tpu")
    assert main(["backup", "copy.sqlite3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "POKEMON_DEVICE" in err


def test_backup_does_not_load_torch_or_discord(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "bot.sqlite3"
    create_database(db, jobs=1)
    code = (
        "import sys; from bot.cli import main; "
        f"rc = main(['backup', {str(tmp_path / 'c.sqlite3')!r}, '--db', {str(db)!r}]); "
        "assert rc == 0; "
        "print(sorted(m for m in ('torch', 'diffusers', 'discord') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
    conn = sqlite3.connect(tmp_path / "c.sqlite3")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_trailing_slash_makes_the_folder_and_puts_a_dated_copy_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "bot.sqlite3"
    create_database(db, jobs=2)
    monkeypatch.chdir(tmp_path)
    # The README's example, as written: `pokemon-bot backup backups/` with no such folder.
    assert main(["backup", "backups/", "--db", str(db)]) == 0
    [copy] = (tmp_path / "backups").iterdir()
    assert copy.name.startswith("bot-")
    assert copy.suffix == ".sqlite3"
    assert count_jobs(copy) == 2
    assert "integrity check: ok" in capsys.readouterr().out


def test_trailing_slash_under_a_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "bot.sqlite3"
    create_database(db, jobs=1)
    (tmp_path / "file").write_text("x")
    assert main(["backup", f"{tmp_path / 'file' / 'backups'}/", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot create the folder" in err
