"""`bot.jobs.delivery.Delivery`: the read-back decision after an upload that may have landed,
and recording an outcome the database refused (no Discord: the edge is faked)."""

from __future__ import annotations

import asyncio

import aiohttp
import discord

from bot.jobs.delivery import Delivery
from bot.messaging import Destination
from storage import StorageError
from tests.bot.jobs.fakes import (
    FakeClient,
    FakeInteraction,
    FakeMessage,
    active_job,
    context,
    http_error,
)

CHANNEL = 200


def delivery_with(client: FakeClient) -> Delivery:
    return Delivery(context(client=client))


async def test_a_job_message_with_the_picture_is_taken_as_delivered() -> None:
    client = FakeClient()
    channel = client.get_partial_messageable(CHANNEL)
    channel.messages[41] = FakeMessage(41, attachments=["pokemon.png"])
    dest = Destination(channel_id=CHANNEL, guild_id=100, message=FakeMessage(41))  # type: ignore[arg-type]
    landed = await delivery_with(client).read_back(active_job(dest=dest))
    assert landed is channel.messages[41]


async def test_a_job_message_without_a_picture_is_not_delivered() -> None:
    client = FakeClient()
    channel = client.get_partial_messageable(CHANNEL)
    channel.messages[41] = FakeMessage(41)  # still the placeholder
    dest = Destination(channel_id=CHANNEL, guild_id=100, message=FakeMessage(41))  # type: ignore[arg-type]
    assert await delivery_with(client).read_back(active_job(dest=dest)) is None


async def test_the_original_response_is_read_through_the_channel_when_the_token_fails() -> None:
    client = FakeClient()
    channel = client.get_partial_messageable(CHANNEL)
    channel.messages[555] = FakeMessage(555, attachments=["pokemon.png"])
    interaction = FakeInteraction(original=http_error(discord.HTTPException, 401))
    dest = Destination(channel_id=CHANNEL, guild_id=100, interaction=interaction.as_interaction())
    job = active_job(dest=dest, progress_message_id=555)  # recorded at the defer
    landed = await delivery_with(client).read_back(job)
    assert landed is channel.messages[555]
    assert channel.fetched == [555]


async def test_the_original_response_is_read_through_the_interaction_while_its_token_lasts() -> (
    None
):
    client = FakeClient()
    interaction = FakeInteraction(original=FakeMessage(555, attachments=["pokemon.png"]))
    dest = Destination(channel_id=CHANNEL, guild_id=100, interaction=interaction.as_interaction())
    landed = await delivery_with(client).read_back(active_job(dest=dest, progress_message_id=555))
    assert landed is interaction.original
    assert client.get_partial_messageable(CHANNEL).fetched == []  # no second read


async def test_nothing_readable_means_not_delivered() -> None:
    client = FakeClient()
    channel = client.get_partial_messageable(CHANNEL)
    channel.messages[41] = aiohttp.ClientConnectionError("reset")
    dest = Destination(channel_id=CHANNEL, guild_id=100, message=FakeMessage(41))  # type: ignore[arg-type]
    assert await delivery_with(client).read_back(active_job(dest=dest)) is None
    # A job with no message at all, whose token is spent: nothing to read.
    dest = Destination(channel_id=CHANNEL, guild_id=100)
    assert await delivery_with(client).read_back(active_job(dest=dest)) is None


async def test_an_outcome_the_database_refused_is_recorded_by_a_later_retry() -> None:
    delivery = delivery_with(FakeClient())
    delivery.record_retry_delay = 0.01
    tries: list[int] = []

    async def write() -> None:
        tries.append(len(tries))
        if len(tries) < 3:
            raise StorageError("database or disk is full")

    await delivery.record(9, write)
    assert list(delivery.unrecorded) == [9]  # kept, retried in the background
    for _ in range(100):
        if not delivery.unrecorded:
            break
        await asyncio.sleep(0.01)
    assert delivery.unrecorded == {}
    assert len(tries) == 3
    await delivery.ctx.tasks.close()


async def test_at_shutdown_an_unrecorded_outcome_gets_one_more_try() -> None:
    delivery = delivery_with(FakeClient())
    delivery.record_retry_delay = 3600.0  # the background retry would come too late
    refused = True

    async def write() -> None:
        if refused:
            raise StorageError("database is locked")

    await delivery.record(9, write)
    refused = False
    await delivery.record_remaining()
    assert delivery.unrecorded == {}
    await delivery.ctx.tasks.close()
