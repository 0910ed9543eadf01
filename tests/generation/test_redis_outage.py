"""`POKEMON_REDIS_URL` pointing at a Redis that is not there: the bot's log says so at start,
again while it lasts, and once when it is back, naming the URL without its password. A real
`redis-server` (tests/redisprocs.py), started late and stopped in between."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from generation.remote import RemoteGenerator
from tests.redisprocs import RedisServer

WAIT = 60.0  # a bound on waits, never a speed check
PASSWORD = "hunter2-secret"
REPEAT = 0.5  # the test's "once a minute"


@pytest.fixture
def server() -> Iterator[RedisServer]:
    found = RedisServer(password=PASSWORD)
    yield found
    found.cleanup()


def lines(caplog: pytest.LogCaptureFixture, start: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(start)]


async def until_logged(caplog: pytest.LogCaptureFixture, start: str, count: int = 1) -> None:
    async with asyncio.timeout(WAIT):
        while len(lines(caplog, start)) < count:  # noqa: ASYNC110 (log records: poll them)
            await asyncio.sleep(0.02)


async def test_an_unreachable_redis_is_logged_at_start_while_it_lasts_and_when_back(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="generation")
    url = f"unix://:{PASSWORD}@{server.socket}"
    shown = f"unix://{server.socket}"
    generator = RemoteGenerator(
        url, queue_size=4, refresh_interval=0.1, max_backoff=0.1, outage_log_interval=REPEAT
    )
    await generator.start()
    try:
        # At start, before anything else: the warning that names the URL.
        down = f"cannot reach Redis at {shown}: "
        [first] = lines(caplog, down)
        assert first.endswith("no job can be sent to a GPU worker until it is back")
        record = next(r for r in caplog.records if r.getMessage() == first)
        assert record.levelno == logging.WARNING
        # While it lasts: again every REPEAT seconds, not at every retry.
        await until_logged(caplog, f"Redis at {shown} still cannot be reached after", 2)
        assert len(lines(caplog, down)) == 1

        await asyncio.to_thread(server.start)
        back = f"Redis at {shown} can be reached again"
        await until_logged(caplog, back)
        status = await generator.status()
        assert status.detail == "no generation worker is online"  # Redis answers now

        # Gone again mid-run (stopped), then back: one warning, one line back.
        await asyncio.to_thread(server.stop)
        await until_logged(caplog, down, 2)
        await asyncio.to_thread(server.start)
        await until_logged(caplog, back, 2)
        assert len(lines(caplog, back)) == 2
    finally:
        await generator.stop(timeout=0)
    assert PASSWORD not in caplog.text
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)
