"""A loopback fake Discord (REST + gateway on 127.0.0.1) to run the real bot against.

    async with FakeDiscord() as fake, run_client(fake, MyBot()) as bot:
        record = await fake.invoke("pokemon", {"prompt": "ピカチュウ"})
        await record.wait_edits(1)

See `server.FakeDiscord` for the harness API and `plugin` for the pytest fixture.
"""

from __future__ import annotations

from .gateway import GatewayFrame, GatewaySession
from .interactions import (
    CallbackRecord,
    EditRecord,
    FileRecord,
    InteractionRecord,
    RejectedCall,
    WireValue,
)
from .plugin import fake_discord, run_client
from .ratelimit import ChannelRateLimit
from .rest import FaultRule, RequestRecord
from .server import CommandSync, FakeDiscord, SpecViolationError
from .spec import SpecViolation
from .state import (
    FakeAttachment,
    FakeChannel,
    FakeCommand,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeUser,
    Intent,
    MessageFlag,
    Perm,
)

__all__ = [
    "CallbackRecord",
    "ChannelRateLimit",
    "CommandSync",
    "EditRecord",
    "FakeAttachment",
    "FakeChannel",
    "FakeCommand",
    "FakeDiscord",
    "FakeGuild",
    "FakeMember",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "FaultRule",
    "FileRecord",
    "GatewayFrame",
    "GatewaySession",
    "Intent",
    "InteractionRecord",
    "MessageFlag",
    "Perm",
    "RejectedCall",
    "RequestRecord",
    "SpecViolation",
    "SpecViolationError",
    "WireValue",
    "fake_discord",
    "run_client",
]
