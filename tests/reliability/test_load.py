"""Load: many users at once against the real bot (`bench/load.py` holds the run and its checks).

The reduced size runs in the default suite; the full 50 × 10 run is `slow`
(`pytest -m slow tests/reliability/test_load.py`, or `python -m bench.load`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.load import LoadConfig, make_rig, run_load
from tests.fakediscord import FakeDiscord


async def check(fake: FakeDiscord, engine: Any, tmp_path: Path, config: LoadConfig) -> None:
    report = await run_load(make_rig(fake, engine, tmp_path / "load.sqlite3", config), config)
    assert report.problems == []
    assert report.interactions == config.users * config.requests
    assert report.rejected_callbacks == 0  # every interaction acknowledged inside the 3 s
    assert len(report.ack_seconds) == report.interactions
    assert report.delivered == report.accepted > 0
    assert report.accepted + sum(report.refused.values()) == report.interactions
    assert set(report.refused) <= {"queue_full", "pending_cap", "rate_limited"}


async def test_ten_users_three_requests_each_nothing_lost_nothing_doubled(
    fake_discord: FakeDiscord, tiny_engine: Any, tmp_path: Path
) -> None:
    config = LoadConfig(users=10, requests=3, queue_size=4, rate_limit=2, progress_interval=0.0)
    await check(fake_discord, tiny_engine, tmp_path, config)


@pytest.mark.slow
async def test_fifty_users_ten_requests_each_nothing_lost_nothing_doubled(
    fake_discord: FakeDiscord, tiny_engine: Any, tmp_path: Path
) -> None:
    await check(fake_discord, tiny_engine, tmp_path, LoadConfig())
