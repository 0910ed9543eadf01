"""Crash-loop back-off: wait before logging in when the last starts kept crashing.

Discord allows 1000 gateway logins a day and resets the bot's token at the cap, so a bot that
crashes at start under a restarting supervisor must slow down on its own. Each login is
recorded in a small JSON file next to the database; a clean exit marks it clean. A start that
did not end cleanly and was followed by another start within `window` seconds of its login is
one crash in a row; from `threshold` crashes in a row the next login waits `base` seconds,
doubling per further crash, at most `cap` seconds.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard, cast

log = logging.getLogger(__name__)

KEEP = 50  # entries kept in the file


def starts_file_for(db_path: Path) -> Path:
    """`<database>.starts.json`: the login record lives with the data it belongs to."""
    return db_path.with_name(db_path.name + ".starts.json")


@dataclass(slots=True)
class CrashLoopGuard:
    """Reads and writes the login record; `delay()` says how long to wait before logging in."""

    path: Path
    window: float = 300.0
    threshold: int = 3
    base: float = 15.0
    cap: float = 300.0
    clock: Callable[[], float] = time.time
    _entries: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])

    def load(self) -> None:
        """Read the record; a missing or unreadable file counts as no history."""
        entries: list[dict[str, Any]]
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            entries = [e for e in data if _is_entry(e)]
        except FileNotFoundError:
            entries = []
        except (OSError, ValueError, TypeError) as exc:
            log.warning("ignoring the unreadable start record %s: %s", self.path, exc)
            entries = []
        self._entries = entries[-KEEP:]

    def crashes_in_a_row(self) -> int:
        """Unclean starts, newest first, each followed by the next start within `window`."""
        count = 0
        following = self.clock()
        for entry in reversed(self._entries):
            if entry.get("clean") or following - float(entry["login"]) > self.window:
                break
            count += 1
            following = float(entry["start"]) if "start" in entry else float(entry["login"])
        return count

    def delay(self) -> float:
        """Seconds to wait before the next login (0 when the recent starts were healthy)."""
        crashes = self.crashes_in_a_row()
        if crashes < self.threshold:
            return 0.0
        return min(self.base * 2 ** (crashes - self.threshold), self.cap)

    def record_login(self, started: float) -> None:
        """A login is about to happen (the process started at `started`); not clean yet."""
        self._entries.append({"start": started, "login": self.clock(), "clean": False})
        self._save()

    def record_exit(self, *, clean: bool) -> None:
        """The process is ending; a clean exit ends any crash streak."""
        if self._entries:
            self._entries[-1]["clean"] = clean
            self._save()

    def _save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(self._entries[-KEEP:]), encoding="utf-8")
            os.replace(tmp, self.path)  # atomic: a crash mid-write leaves the old record
        except OSError as exc:
            log.warning("could not write the start record %s: %s", self.path, exc)


def _is_entry(value: object) -> TypeGuard[dict[str, Any]]:
    """A dict whose `login` (and `start`, if any) is a number. A hand-edited text or null time
    would otherwise fail every start before the login that rewrites the record."""
    if not isinstance(value, dict):
        return False
    entry = cast("dict[str, Any]", value)
    times = [entry.get("login"), *([entry["start"]] if "start" in entry else [])]
    return all(isinstance(t, int | float) and not isinstance(t, bool) for t in times)
