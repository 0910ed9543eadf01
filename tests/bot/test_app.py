"""`bot.app.run_bot`, the production wiring, against the fake Discord: start-up order, logs,
and a clean exit 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

import pytest

from bot.app import run_bot
from bot.client import PokemonBot
from bot.settings import Settings
from generation.errors import WorkerStoppedError
from generation.types import GenerationRequest
from tests.fakediscord import FakeDiscord


async def test_sigterm_stops_the_bot_cleanly_with_exit_0(
    bot_settings: Settings,
    fake_discord: FakeDiscord,
    tiny_engine: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    built: list[PokemonBot] = []

    def make_bot(**kwargs: Any) -> PokemonBot:
        bot = PokemonBot(**kwargs)
        bot._connection.guild_ready_timeout = 0.05  # the fake sends every guild at once
        built.append(bot)
        return bot

    task = asyncio.create_task(
        run_bot(bot_settings, engine_factory=lambda _: tiny_engine, bot_factory=make_bot)
    )
    await fake_discord.wait_until(lambda: task.done() or (built and built[0].is_ready()), 30)
    assert not task.done(), task
    (bot,) = built
    assert fake_discord.sync_count() == 1  # commands registered in setup_hook

    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(task, 30) == 0
    assert bot.is_closed()
    with pytest.raises(WorkerStoppedError):  # the worker was stopped, not left running
        bot.generator.worker.submit(1, 1, GenerationRequest(prompt="x"))
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("loading model… ") and " s " in m for m in messages), messages
    assert any(m.startswith("ready as ") and "in guilds: Fake Guild" in m for m in messages)
    assert "SIGTERM received" in messages
    # The database was closed: a new connection sees no leftover lock and no pending jobs.
    from storage import Storage

    async with await Storage.open(bot_settings.pokemon_db) as store:
        assert await store.jobs.pending() == []
