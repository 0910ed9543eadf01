"""`Tasks`: the one helper for background work, in the bot and in the generators."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from generation.tasks import Tasks


async def test_a_spawned_task_is_kept_until_it_ends_even_without_a_reference() -> None:
    tasks = Tasks("test")
    finished = asyncio.Event()

    async def work() -> None:
        await asyncio.sleep(0.05)
        finished.set()

    tasks.spawn(work(), name="kept")
    gc.collect()
    assert len(tasks) == 1
    await asyncio.wait_for(finished.wait(), 5)
    await asyncio.sleep(0)
    assert len(tasks) == 0


async def test_a_failure_is_logged_with_its_owner_name_and_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = Tasks("remote generator")

    async def broken() -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="generation.tasks"):
        task = tasks.spawn(broken(), name="remote-generator-read")
        assert await tasks.wait(5)
        await asyncio.sleep(0)
    assert task.done()
    [record] = caplog.records
    assert record.getMessage() == "remote generator: background task remote-generator-read failed"
    assert record.exc_info is not None
    assert "boom" in str(record.exc_info[1])


async def test_close_cancels_and_awaits_what_still_runs() -> None:
    tasks = Tasks("test")
    cleaned = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.set()

    task = tasks.spawn(forever(), name="loop")
    await asyncio.sleep(0)
    assert not await tasks.wait(0.01)
    await tasks.close()
    assert task.cancelled()
    assert cleaned.is_set()
    assert len(tasks) == 0
