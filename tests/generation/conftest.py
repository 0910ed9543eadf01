"""Fixtures for the generator tests: a real redis-server and real `pokemon-bot worker`s."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from generation.remote import RemoteGenerator
from tests.redisprocs import RedisServer, Workers


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def workers(redis_server: RedisServer, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(redis_server.url, tmp_path)
    yield pool
    pool.stop_all()


@pytest.fixture
async def remote(
    redis_server: RedisServer,
) -> AsyncIterator[Callable[..., Awaitable[RemoteGenerator]]]:
    """Make and start RemoteGenerators on the test's Redis; stop every one afterwards."""
    made: list[RemoteGenerator] = []

    async def make(**options: Any) -> RemoteGenerator:
        options.setdefault("queue_size", 8)
        options.setdefault("refresh_interval", 0.1)
        options.setdefault("max_backoff", 0.5)
        generator = RemoteGenerator(redis_server.url, **options)
        await generator.start()
        made.append(generator)
        return generator

    yield make
    for generator in made:
        if not generator.stopped:
            await generator.stop(timeout=0)
