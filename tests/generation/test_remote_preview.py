"""Previews from a remote worker: a real `pokemon-bot worker` process on a real redis-server
sends them in its progress entries, the bot's `RemoteGenerator` hands them on as
`Progress.preview`, and the entries that carried one are deleted once read."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from typing import Any

from PIL import Image

from generation.generator import Cancelled, Done, Failed
from generation.preview import PREVIEW_SIDE
from generation.remote import RemoteGenerator
from generation.streams import PREVIEW_WIRE_MAX_BYTES, Keys, connect, encode_progress
from generation.types import GenerationRequest, Progress
from tests.redisprocs import Workers

Remote = Callable[..., Awaitable[RemoteGenerator]]
WAIT = 60.0
# The worker's production pacing: none in a job's first 2 s. 60 steps of 0.05 s: about 3 s.
SLOW_MODEL = "fake:step=0.05"
STEPS = 60


async def progress_of(remote: Remote, workers: Workers, **env: str) -> list[Progress]:
    workers.start("w1", model=SLOW_MODEL, max_batch=1, extra_env=env)
    generator = await remote()
    await generator.wait_for_workers(1, WAIT)
    request = GenerationRequest("ピカチュウ", seed=3, steps=STEPS, height=64, width=64)
    handle = await generator.submit(1, 10, request)
    seen: list[Progress] = []
    outcome: Any = None
    async with asyncio.timeout(WAIT):
        async for event in handle.events():
            if isinstance(event, Progress):
                seen.append(event)
            elif isinstance(event, Done | Failed | Cancelled):
                outcome = event
    assert isinstance(outcome, Done), outcome
    return seen


async def test_a_remote_workers_progress_carries_previews_over_redis(
    remote: Remote, workers: Workers
) -> None:
    seen = await progress_of(remote, workers)

    previews = [e for e in seen if e.preview is not None]
    assert previews, f"no preview in {len(seen)} progress events"
    assert all(e.elapsed >= 2.0 and e.step < STEPS for e in previews)
    assert len(previews) < len(seen) / 4  # at most one per 2 s, not one per step
    picture = Image.open(io.BytesIO(previews[0].preview or b""))
    assert (picture.format, picture.size) == ("JPEG", (PREVIEW_SIDE, PREVIEW_SIDE))
    client = connect(workers.url)
    try:
        left = await client.xrange(Keys().events)
        assert left, "the progress entries without a preview stay until trimmed"
        assert not [fields for _id, fields in left if b"preview" in fields]
    finally:
        await client.aclose()


async def test_a_remote_worker_with_previews_off_sends_none(
    remote: Remote, workers: Workers
) -> None:
    seen = await progress_of(remote, workers, POKEMON_PREVIEW="off")
    assert len(seen) > STEPS / 2
    assert all(e.preview is None for e in seen)


def test_a_preview_over_the_wire_limit_is_left_out_and_the_progress_still_goes() -> None:
    fits = Progress(1, 5, 60, 2.5, b"j" * PREVIEW_WIRE_MAX_BYTES)
    too_big = Progress(1, 6, 60, 2.6, b"j" * (PREVIEW_WIRE_MAX_BYTES + 1))

    assert encode_progress(fits)["preview"] == fits.preview
    entry = encode_progress(too_big)
    assert "preview" not in entry
    assert (entry["step"], entry["total"], entry["elapsed"]) == ("6", "60", "2.600")
    assert "preview" not in encode_progress(Progress(1, 7, 60, 2.7))
