"""Pytest glue: the `fake_discord` fixture and `run_client`, to drive a real bot end to end.

A conftest makes the fixture available with
`from tests.fakediscord.plugin import fake_discord  # noqa: F401`; options for the fake go
through indirect parametrization: `@pytest.mark.parametrize("fake_discord",
[{"interaction_deadline": 0.5}], indirect=True)`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import pytest_asyncio

from .server import FakeDiscord, SpecViolationError

if TYPE_CHECKING:
    import discord

ClientT = TypeVar("ClientT", bound="discord.Client")


@pytest_asyncio.fixture
async def fake_discord(request: pytest.FixtureRequest) -> AsyncIterator[FakeDiscord]:
    """A started fake Discord with discord.py redirected to it; stopped afterwards. The test
    fails at teardown if it made calls that break Discord's API spec and did not take them
    (`fake.take_spec_violations()`)."""
    options: dict[str, Any] = getattr(request, "param", None) or {}
    async with FakeDiscord(**options) as fake:
        with fake.redirect():
            yield fake
        if fake.spec_violations:
            # Calls Discord would refuse fail the test that made them (unless it took them).
            pytest.fail(str(SpecViolationError(fake.take_spec_violations())), pytrace=False)


@contextlib.asynccontextmanager
async def run_client(
    fake: FakeDiscord,
    client: ClientT,
    *,
    within: float = 15.0,
    guild_ready_timeout: float | None = 0.05,
) -> AsyncIterator[ClientT]:
    """Run `client` against `fake` until READY (on_ready fired), then yield it; close it after.

    discord.py waits `guild_ready_timeout` (2 s by default) after the last GUILD_CREATE
    before firing on_ready; the fake sends them all at once, so the helper shortens it.
    Pass None to keep the client's own value. Errors while starting (a bad token, a failing
    `setup_hook`) are raised here rather than hanging until the timeout.
    """
    if guild_ready_timeout is not None:
        client._connection.guild_ready_timeout = guild_ready_timeout
    with fake.redirect():
        task = asyncio.create_task(client.start(fake.token), name="fake-discord-client")
        try:
            await fake.wait_until(lambda: client.is_ready() or task.done(), within)
            if task.done():
                task.result()  # raises what made the client stop
                raise RuntimeError("the client stopped before it became ready")
            yield client
        finally:
            await client.close()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10.0)
