"""The crash-loop record (`bot/crashloop.py`) when its entries are valid JSON of the wrong shape."""

from __future__ import annotations

import json
from pathlib import Path

from bot.crashloop import CrashLoopGuard


def test_entries_with_times_that_are_not_numbers_are_ignored_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3.starts.json"
    now = 1_000_000.0
    good = [{"start": now - 30 * i, "login": now - 30 * i + 1, "clean": False} for i in (3, 2, 1)]
    bad = [{"login": True}, {"start": "x", "login": now}, {"login": None}, {"login": "yesterday"}]
    path.write_text(json.dumps(good + bad), encoding="utf-8")
    guard = CrashLoopGuard(path, clock=lambda: now)
    guard.load()
    # The three well-formed crashes still count; the malformed entries neither count nor raise.
    assert guard.crashes_in_a_row() == 3
    assert guard.delay() == guard.base
