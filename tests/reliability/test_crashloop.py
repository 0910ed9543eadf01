"""Crash-loop back-off before login (`bot/crashloop.py`, wired in `bot.app.run_bot`)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from bot.app import run_bot
from bot.client import PokemonBot
from bot.crashloop import CrashLoopGuard, starts_file_for
from bot.settings import Settings
from tests.fakediscord import FakeDiscord


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def crash(guard: CrashLoopGuard, clock: Clock, *, after: float = 10.0) -> None:
    """One start that logs in and dies without a clean exit, `after` seconds later."""
    guard.load()
    guard.record_login(clock.now)
    clock.now += after


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guard(tmp_path: Path, clock: Clock) -> CrashLoopGuard:
    return CrashLoopGuard(tmp_path / "db.sqlite3.starts.json", base=15, cap=300, clock=clock)


def test_two_quick_crashes_do_not_delay_the_third_login(
    guard: CrashLoopGuard, clock: Clock
) -> None:
    crash(guard, clock)
    crash(guard, clock)
    guard.load()
    assert guard.delay() == 0


def test_delay_starts_at_three_crashes_within_five_minutes_and_doubles_up_to_the_cap(
    guard: CrashLoopGuard, clock: Clock
) -> None:
    delays = []
    for _ in range(9):
        crash(guard, clock)
        guard.load()
        delays.append(guard.delay())
    assert delays == [0, 0, 15, 30, 60, 120, 240, 300, 300]


def test_a_clean_exit_ends_the_streak(guard: CrashLoopGuard, clock: Clock) -> None:
    for _ in range(4):
        crash(guard, clock)
    guard.load()
    guard.record_login(clock.now)
    guard.record_exit(clean=True)
    crash(guard, clock)
    guard.load()
    assert guard.crashes_in_a_row() == 1
    assert guard.delay() == 0


def test_a_crash_after_a_long_healthy_run_is_not_part_of_a_loop(
    guard: CrashLoopGuard, clock: Clock
) -> None:
    for _ in range(3):
        crash(guard, clock, after=3600.0)  # each ran an hour before dying
    guard.load()
    assert guard.delay() == 0


def test_the_record_survives_a_restart_and_a_corrupt_file_counts_as_no_history(
    guard: CrashLoopGuard, clock: Clock
) -> None:
    for _ in range(3):
        crash(guard, clock)
    again = CrashLoopGuard(guard.path, base=15, clock=clock)
    again.load()
    assert again.delay() == 15
    guard.path.write_text("{not json", encoding="utf-8")
    again.load()
    assert again.delay() == 0


def test_starts_file_lives_next_to_the_database(tmp_path: Path) -> None:
    assert starts_file_for(tmp_path / "bot.sqlite3") == tmp_path / "bot.sqlite3.starts.json"


async def test_run_bot_waits_before_logging_in_after_repeated_crashes_and_says_why(
    bot_settings: Settings,
    fake_discord: FakeDiscord,
    tiny_engine: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    path = starts_file_for(bot_settings.pokemon_db)
    wall = time.time()
    path.write_text(
        json.dumps(
            [{"start": wall - 30 + i, "login": wall - 30 + i, "clean": False} for i in range(3)]
        ),
        encoding="utf-8",
    )
    guard = CrashLoopGuard(path, base=0.5, cap=1.0)
    built: list[PokemonBot] = []

    def make_bot(**kwargs: Any) -> PokemonBot:
        bot = PokemonBot(**kwargs)
        bot._connection.guild_ready_timeout = 0.05
        built.append(bot)
        return bot

    task = asyncio.create_task(
        run_bot(
            bot_settings,
            engine_factory=lambda _: tiny_engine,
            bot_factory=make_bot,
            crash_guard=guard,
        )
    )
    await fake_discord.wait_until(
        lambda: any("waiting" in r.getMessage() for r in caplog.records), 30
    )
    assert fake_discord.gateway.identify_count == 0  # not logged in while backing off
    assert built == []
    await fake_discord.wait_until(lambda: built and built[0].is_ready(), 30)
    assert fake_discord.gateway.identify_count == 1
    (why,) = [r.getMessage() for r in caplog.records if "waiting" in r.getMessage()]
    assert why.startswith("the last 3 starts crashed within 300 s of each other; waiting 0.5 s")
    built[0].request_shutdown()
    assert await asyncio.wait_for(task, 30) == 0
    entries = json.loads(path.read_text(encoding="utf-8"))
    assert len(entries) == 4
    assert entries[-1]["clean"] is True  # this run exited cleanly: the streak is over
