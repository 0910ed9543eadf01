"""Stand-ins for the Discord edge, for the job layer's unit tests: no gateway, no sockets.

Only what the part under test calls is here; each records what was asked of it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import discord

from bot.jobs.presenter import ResultCard
from bot.jobs.state import ActiveJob, JobContext
from bot.messaging import Destination, EditThrottle
from bot.settings import Settings
from generation.types import GenerationRequest


def http_error(kind: type[discord.HTTPException], status: int) -> discord.HTTPException:
    """A discord.py HTTP error as its REST client raises it."""
    return kind(SimpleNamespace(status=status, reason="fake"), {"message": "fake", "code": 0})


@dataclass
class FakeMessage:
    id: int
    attachments: list[object] = field(default_factory=list[object])
    edits: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    edit_error: BaseException | None = None

    async def edit(self, **kwargs: Any) -> FakeMessage:
        if self.edit_error is not None:
            raise self.edit_error
        self.edits.append(kwargs)
        return self


@dataclass
class FakeChannel:
    """A channel: `messages` by id (a value that is an exception is raised when read)."""

    id: int
    messages: dict[int, FakeMessage | BaseException] = field(
        default_factory=dict[int, "FakeMessage | BaseException"]
    )
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list[tuple[str, dict[str, Any]]])
    fetched: list[int] = field(default_factory=list[int])

    async def fetch_message(self, message_id: int) -> FakeMessage:
        self.fetched.append(message_id)
        found = self.messages.get(message_id)
        if found is None:
            raise http_error(discord.NotFound, 404)
        if isinstance(found, BaseException):
            raise found
        return found

    def get_partial_message(self, message_id: int) -> FakeMessage:
        found = self.messages.setdefault(message_id, FakeMessage(message_id))
        assert isinstance(found, FakeMessage)
        return found

    async def send(self, content: str, **kwargs: Any) -> FakeMessage:
        self.sent.append((content, kwargs))
        return FakeMessage(1000 + len(self.sent))


@dataclass
class FakeClient:
    channels: dict[int, FakeChannel] = field(default_factory=dict[int, FakeChannel])

    def get_partial_messageable(self, channel_id: int, *, guild_id: int | None = None) -> Any:
        return self.channels.setdefault(channel_id, FakeChannel(channel_id))

    def as_client(self) -> discord.Client:
        return cast(discord.Client, self)


@dataclass
class FakeFollowup:
    sent: list[tuple[str, bool]] = field(default_factory=list[tuple[str, bool]])

    async def send(self, content: str, *, ephemeral: bool = False) -> None:
        self.sent.append((content, ephemeral))


@dataclass
class FakeResponse:
    done: bool = False
    deferred: bool = False

    def is_done(self) -> bool:
        return self.done

    async def defer(self, *, thinking: bool = False) -> Any:
        self.done = self.deferred = True
        return SimpleNamespace(message_id=555)

    async def send_message(self, content: str, *, ephemeral: bool = False) -> None:
        raise AssertionError("answered before the defer")


@dataclass
class FakeInteraction:
    """An interaction: who, where, and what the bot answered through it."""

    user_id: int = 7
    guild_id: int | None = 100
    channel_id: int = 200
    locale: str = "ja"
    message_id: int | None = None  # a component's message
    response: FakeResponse = field(default_factory=FakeResponse)
    followup: FakeFollowup = field(default_factory=FakeFollowup)
    original: FakeMessage | BaseException | None = None
    deleted_original: bool = False
    expires_at: dt.datetime = field(
        default_factory=lambda: discord.utils.utcnow() + dt.timedelta(minutes=15)
    )

    @property
    def user(self) -> Any:
        return SimpleNamespace(id=self.user_id)

    @property
    def message(self) -> Any:
        return None if self.message_id is None else SimpleNamespace(id=self.message_id)

    def is_expired(self) -> bool:
        return discord.utils.utcnow() >= self.expires_at

    async def delete_original_response(self) -> None:
        self.deleted_original = True

    async def original_response(self) -> Any:
        if isinstance(self.original, BaseException):
            raise self.original
        if self.original is None:
            raise http_error(discord.NotFound, 404)
        return self.original

    def as_interaction(self) -> discord.Interaction[Any]:
        return cast("discord.Interaction[Any]", self)


class FakePresenter:
    """Texts that say what they stand for; no buttons."""

    def queued_text(self, locale: str, position: int, eta_seconds: float | None) -> str:
        return f"queued {position}"

    def progress_text(self, locale: str, step: int, total: int, *, kind: str = "draw") -> str:
        return f"step {step}/{total}"

    def posting_text(self, locale: str) -> str:
        return "posting"

    def cancelled_text(self, locale: str, by_user_id: int) -> str:
        return f"cancelled by {by_user_id}"

    def ended_text(self, locale: str, code: str) -> str:
        return f"ended: {code}"

    def expired_text(self, locale: str) -> str:
        return "expired"

    def already_drawing_text(self, locale: str, position: int | None) -> str:
        return f"already drawing {position}"

    def progress_view(self, job_id: int, locale: str) -> discord.ui.View | None:
        return None

    def result_view(self, job_id: int, locale: str, *, pictures: int) -> discord.ui.View | None:
        return None

    def result_embed(self, locale: str, card: ResultCard) -> discord.Embed:
        return discord.Embed(description=card.prompt)


def settings(db: Path | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "discord_token": "x.y.z",
        "pokemon_device": "cpu",
        "pokemon_db": db or Path("unused.sqlite3"),
        "pokemon_size": 64,
        "pokemon_steps": 3,
        "pokemon_max_steps": 10,
        "pokemon_user_max_pending": 2,
        "pokemon_rate_limit": 20,
        "pokemon_rate_period": "day",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # pyright: ignore[reportCallIssue]


def context(
    *,
    client: FakeClient | None = None,
    store: Any = None,
    generator: Any = None,
    config: Settings | None = None,
    progress_interval: float = 2.0,
) -> JobContext:
    return JobContext(
        store=store,
        generator=generator,
        settings=config or settings(),
        client=(client or FakeClient()).as_client(),
        presenter=FakePresenter(),
        progress_interval=progress_interval,
    )


def active_job(
    job_id: int = 1,
    *,
    dest: Destination | None = None,
    throttle: EditThrottle | None = None,
    progress_message_id: int | None = None,
) -> ActiveJob:
    return ActiveJob(
        job_id=job_id,
        user_id=7,
        guild_id=100,
        locale="en",
        request=GenerationRequest(prompt="ピカチュウ", height=64, width=64, steps=3),
        dest=dest or Destination(channel_id=200, guild_id=100),
        parent_job_id=None,
        throttle=throttle or EditThrottle(2.0),
        progress_message_id=progress_message_id,
    )
