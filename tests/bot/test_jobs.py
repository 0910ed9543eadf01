"""`bot.jobs.JobRunner` at its edges: a shutdown racing the start-up resume, and a queue-place
message that cannot reach Discord. Real bot, worker thread, SQLite file and loopback Discord."""

from __future__ import annotations

import asyncio
import socket

import discord.http
import pytest

from bot.client import PokemonBot
from bot.jobs import new_job
from bot.messaging import Destination
from bot.validation import validate_pokemon
from generation.worker import GenerationWorker
from storage import Storage
from tests.bot.conftest import BotRig, png_of
from tests.fakediscord import FakeDiscord


def closed_port_base() -> str:
    """A REST base on a loopback port nobody listens on: every call is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v10"


async def test_shutdown_requested_while_starting_leaves_resumable_jobs_queued_on_disk(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    settings = bot_rig.settings
    request = validate_pokemon(settings, "のこる", seed=1)
    store = await Storage.open(
        settings.pokemon_db,
        default_limit=settings.default_limit,
        owner_ids=settings.pokemon_owner_ids,
        max_pending=settings.pokemon_user_max_pending,
    )
    worker = GenerationWorker(bot_rig.engine, queue_size=8)
    worker.start()
    try:
        admission = await store.admit(
            new_job(
                request,
                user_id=fake_discord.alice.id,
                guild_id=fake_discord.guild.id,
                channel_id=fake_discord.channel.id,
                locale="en",
            )
        )
        assert admission.job is not None
        bot = PokemonBot(settings=settings, store=store, worker=worker, engine=bot_rig.engine)
        # SIGTERM before the login finished: the shutdown stops the worker, then the login's
        # setup hook goes on to resume the jobs left on disk.
        bot.request_shutdown()
        await bot.wait_shutdown()
        with fake_discord.redirect():
            await asyncio.wait_for(bot.start(fake_discord.token), 15)
        await bot.http.close()  # the login opened a session that the earlier close() never saw
        job = await store.jobs.get(admission.job.id)
        assert job is not None
        assert (job.state, job.error_code) == ("queued", None)
        assert fake_discord.bot_messages() == []  # nobody was told their job failed
    finally:
        await worker.stop(timeout=10)
        await store.close()


async def test_queue_place_message_that_cannot_reach_discord_does_not_fail_the_submit(
    bot_rig: BotRig, fake_discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        await fake_discord.invoke("pokemon", {"prompt": "さき"})
        await fake_discord.wait_until(lambda: bot.worker.running == 1, 30)
        request = validate_pokemon(bot.settings, "あと", seed=2)
        admission = await bot.store.admit(
            new_job(
                request,
                user_id=fake_discord.bob.id,
                guild_id=fake_discord.guild.id,
                channel_id=fake_discord.channel.id,
                locale="en",
            )
        )
        assert admission.job is not None
        dest = Destination(channel_id=fake_discord.channel.id, guild_id=fake_discord.guild.id)
        with monkeypatch.context() as patch:
            # Discord unreachable for a moment: the queue-place post gets a refused connection,
            # which discord.py raises as it is (an OSError), not as an HTTPException.
            patch.setattr(discord.http.Route, "BASE", closed_port_base())
            handle = await bot.runner.submit(admission.job, request, dest, locale="en")
        bot_rig.engine.open_gate()
        await asyncio.wait_for(asyncio.shield(handle.future), 30)
        await fake_discord.wait_until(lambda: not bot.runner.active, 30)
        job = await bot.store.jobs.get(admission.job.id)
        assert job is not None
        assert job.state == "done"
        (posted,) = [
            m
            for m in fake_discord.bot_messages(fake_discord.channel.id)
            if m.id == job.result_message_id
        ]
        assert png_of(posted).size == (64, 64)
