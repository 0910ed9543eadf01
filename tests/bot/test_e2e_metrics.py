"""The bot's own metrics, end to end: a picture delivered over the loopback Discord is
observed in `pokemon_time_to_picture_seconds` (what the dashboard's p50/p95 read)."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tests.bot.conftest import BotRig
from tests.fakediscord import FakeDiscord

COUNT = "pokemon_time_to_picture_seconds_count"
TOTAL = "pokemon_time_to_picture_seconds_sum"


def value(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_a_delivered_picture_is_timed_from_its_request(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run():
        count, total = value(COUNT), value(TOTAL)
        record = await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ", "seed": 1})
        await bot_rig.wait_result(record)
        await fake_discord.wait_until(lambda: value(COUNT) == count + 1, 30.0)
        assert value(TOTAL) > total  # a real wait: the tiny model took some time to draw it
