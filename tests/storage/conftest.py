"""Fixtures for storage tests: real SQLite files in tmp_path and a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from storage import JSON, NewJob, Storage

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A settable aware-UTC clock: `clock()` is now, `advance(...)` moves it."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


BASE_REQUEST: dict[str, JSON] = {
    "prompt": "ピカチュウ、森の中",
    "negative_prompt": "ぼやけた",
    "seed": 42,
    "steps": 25,
    "guidance": 7.5,
    "width": 512,
    "height": 512,
    "scheduler": "dpmpp-2m",
}

BASE_JOB = NewJob(user_id=1001, guild_id=2001, channel_id=3001, request=BASE_REQUEST, locale="ja")

_JOB_FIELDS = frozenset(field.name for field in fields(NewJob))


def make_job(**changes: Any) -> NewJob:
    """A valid NewJob with some fields changed; other keywords change keys of its request."""
    job_changes = {key: value for key, value in changes.items() if key in _JOB_FIELDS}
    request = job_changes.pop("request", BASE_REQUEST)
    extra = {key: value for key, value in changes.items() if key not in _JOB_FIELDS}
    if extra:
        request = {**request, **extra}
    return replace(BASE_JOB, request=request, **job_changes)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "bot.sqlite3"


@pytest.fixture
def open_store(db_path: Path, clock: FakeClock) -> Callable[..., Any]:
    """Open a Storage on the test's file; every store opened is closed at teardown."""
    opened: list[Storage] = []

    async def _open(**options: Any) -> Storage:
        options.setdefault("default_limit", (20, "day"))
        options.setdefault("max_pending", 2)
        options.setdefault("clock", clock)
        store = await Storage.open(options.pop("path", db_path), **options)
        opened.append(store)
        return store

    _open.opened = opened  # type: ignore[attr-defined]
    return _open


@pytest.fixture
async def store(open_store: Callable[..., Any]) -> AsyncIterator[Storage]:
    store = await open_store()
    yield store
    await store.close()


@pytest.fixture(autouse=True)
async def _close_opened(open_store: Callable[..., Any]) -> AsyncIterator[None]:
    yield
    for store in open_store.opened:  # type: ignore[attr-defined]
        await store.close()
