"""Where a job comes from, each knowing how to show and refuse for itself: `/pokemon`
(`CommandOrigin`), a reaction (`ReactionOrigin`), a button under a result (`ButtonOrigin`) or a
row the last process left (`ResumedOrigin`). The job layer (`bot.jobs`) takes one of these for
every job and never asks which one it has; the cogs and buttons build them. This module
imports neither, so that buttons and the job layer do not import each other.

What every origin answers: `user_id`, `guild_id`, `channel_id`, `locale`; `prepare()` (before
anything slow), `new_row(request)` (the row to admit), `shown_message_id` (a message known
before anything is drawn), `destination(client)` (where the job's messages go),
`refuse(client, text)`, `describe()` (for the log line), `deferred_public`, `resumed`,
`answers_unexpected` (an unexpected error is answered with an error id here, not raised) and,
for a new picture from a result, `answers_duplicates` (a repeat is told what is happening).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import discord

from bot.i18n import language_of, t
from bot.jobs.rows import new_job
from bot.messaging import (
    TRANSIENT_ERRORS,
    Destination,
    channel_notice,
    defer_public,
    send_ephemeral,
)

if TYPE_CHECKING:
    from generation.types import GenerationRequest
    from storage import JobRecord, NewJob

log = logging.getLogger(__name__)

REFUSAL_SECONDS = 10  # a refusal posted in the channel (for a reaction) deletes itself


class FromInteraction:
    """Who asked, where, in which language: read from the origin's interaction; refusals go
    privately to them through it."""

    __slots__ = ()
    interaction: discord.Interaction[Any]
    resumed: ClassVar[bool] = False

    @property
    def user_id(self) -> int:
        return self.interaction.user.id

    @property
    def guild_id(self) -> int | None:
        return self.interaction.guild_id

    @property
    def channel_id(self) -> int:
        return self.interaction.channel_id or 0

    @property
    def locale(self) -> str:
        return language_of(self.interaction.locale)

    @property
    def deferred_public(self) -> bool:
        return False

    async def refuse(self, client: discord.Client, text: str) -> None:
        """An ephemeral answer only the presser or invoker sees."""
        try:
            await send_ephemeral(self.interaction, text, after_public_defer=self.deferred_public)
        except discord.HTTPException as exc:
            log.warning("could not tell user=%s about a refusal: %s", self.user_id, exc)


class FromResult(Protocol):
    """A new picture from a result (🔁, 🎨), as `ChildOfResult` reads it."""

    @property
    def user_id(self) -> int: ...
    @property
    def guild_id(self) -> int | None: ...
    @property
    def channel_id(self) -> int: ...
    @property
    def locale(self) -> str: ...
    @property
    def message_id(self) -> int: ...  # the result message reacted to or pressed under
    @property
    def parent(self) -> JobRecord: ...
    @property
    def picture(self) -> int: ...


class ChildOfResult:
    """What 🔁 and 🎨 do alike, reaction or button: nothing to answer before admission, no
    message before the job is queued, a row that names the parent, and channel messages
    replying to the picture."""

    __slots__ = ()

    @property
    def shown_message_id(self) -> int | None:
        return None  # its message is posted once it is queued

    async def prepare(self) -> None:
        return None  # a reaction needs no answer; the router acknowledged a press already

    def new_row(self: FromResult, request: GenerationRequest) -> NewJob:
        return new_job(
            request,
            user_id=self.user_id,
            guild_id=self.guild_id,
            channel_id=self.channel_id,
            locale=self.locale,
            images=request.count,
            parent_job_id=self.parent.id,
            reply_to_message_id=self.message_id,
            # For a picture drawn from a picture: which picture of the message it replies to
            # a later 🔁 reads again (the one a 🎨 button named; 1 for a reaction or 🔁).
            source_picture=self.picture if request.is_img2img else None,
        )

    def destination(self: FromResult, client: discord.Client) -> Destination:
        return Destination(
            channel_id=self.channel_id, guild_id=self.guild_id, reply_to=self.message_id
        )


@dataclass(slots=True)
class CommandOrigin(FromInteraction):
    """`/pokemon`: answered through the interaction (refusals ephemeral)."""

    interaction: discord.Interaction[Any]
    deferred: bool = False  # publicly, with "thinking…"
    message_id: int | None = None  # the original response, once deferred
    # One-line notices the finished picture's message carries: a default of the user's that
    # could not be used as saved, the pointer to /about on their first picture in a server.
    notes: tuple[str, ...] = ()
    answers_unexpected: ClassVar[bool] = True

    @property
    def deferred_public(self) -> bool:
        return self.deferred

    @property
    def shown_message_id(self) -> int | None:
        """The original response: recorded before anything is drawn, so that after a crash
        the job is found in the message that may already carry its picture."""
        return self.message_id

    async def prepare(self) -> None:
        """Defer well inside Discord's 3 s; nothing slow comes before it."""
        self.message_id = await defer_public(self.interaction)
        self.deferred = True

    def new_row(self, request: GenerationRequest) -> NewJob:
        return new_job(
            request,
            user_id=self.user_id,
            guild_id=self.guild_id,
            channel_id=self.interaction.channel_id,
            locale=self.locale,
            images=request.count,  # each picture counts against the quota
            interaction_expires_at=self.interaction.expires_at,
        )

    def destination(self, client: discord.Client) -> Destination:
        return Destination(
            channel_id=self.channel_id,
            guild_id=self.guild_id,
            interaction=self.interaction,
            handoff_text=t("pokemon.handoff", self.locale),
        )

    def describe(self) -> str:
        return "command"


@dataclass(frozen=True, slots=True)
class ReactionOrigin(ChildOfResult):
    """🔁 on a result: a variation of `parent` for whoever reacted, replying to that picture.
    A reaction cannot be answered privately, so refusals are short-lived channel notices, and
    a repeated reaction is not answered at all."""

    user_id: int
    guild_id: int | None
    channel_id: int
    message_id: int  # the picture reacted to
    parent: JobRecord
    locale: str
    member: discord.Member | None = None  # with roles: for /pokemon's Integrations settings
    picture: int = 1  # which picture of a set 🎨 starts from (a reaction: the first)
    answers_duplicates: ClassVar[bool] = False
    answers_unexpected: ClassVar[bool] = False
    deferred_public: ClassVar[bool] = False
    resumed: ClassVar[bool] = False
    notes: ClassVar[tuple[str, ...]] = ()

    async def refuse(self, client: discord.Client, text: str) -> None:
        """A short-lived notice that names the user without pinging them (a refusal is not
        worth a notification)."""
        await channel_notice(
            client,
            self.channel_id,
            self.user_id,
            text,
            guild_id=self.guild_id,
            delete_after=REFUSAL_SECONDS,
            ping=False,
        )

    def describe(self) -> str:
        return f"reaction on job={self.parent.id}"


@dataclass(slots=True)
class ButtonOrigin(ChildOfResult, FromInteraction):
    """🔁 or 🎨 (a button) under a result: a new picture from `parent` for whoever pressed it.
    Like a reaction, the new job's messages are channel messages replying to the pressed
    picture; unlike one, refusals (and a repeated press) are answered privately through the
    press's interaction (which the router has already acknowledged without a visible change)."""

    interaction: discord.Interaction[Any]
    parent: JobRecord
    picture: int = 1  # which picture of a set the pressed 🎨 button names
    answers_duplicates: ClassVar[bool] = True
    answers_unexpected: ClassVar[bool] = False  # the router answers a handler that fails
    notes: ClassVar[tuple[str, ...]] = ()

    @property
    def message_id(self) -> int:
        message = self.interaction.message
        return message.id if message is not None else 0

    @property
    def member(self) -> discord.Member | None:
        user = self.interaction.user
        return user if isinstance(user, discord.Member) else None

    def describe(self) -> str:
        return f"button on job={self.parent.id}"


@dataclass(frozen=True, slots=True)
class ResumedOrigin:
    """A job row the last process left queued or running: it continues in the message its
    user already has (a 🔁 variation replying to the picture reacted to); a refusal is said
    in that message, or in a channel notice when it is gone."""

    row: JobRecord
    resumed: ClassVar[bool] = True
    deferred_public: ClassVar[bool] = False
    notes: ClassVar[tuple[str, ...]] = ()

    @property
    def user_id(self) -> int:
        return self.row.user_id

    @property
    def guild_id(self) -> int | None:
        return self.row.guild_id

    @property
    def channel_id(self) -> int:
        return self.row.channel_id or 0

    @property
    def locale(self) -> str:
        return self.row.locale

    def destination(self, client: discord.Client) -> Destination:
        row = self.row
        channel = client.get_partial_messageable(self.channel_id, guild_id=row.guild_id)
        message = (
            channel.get_partial_message(row.progress_message_id)
            if row.progress_message_id is not None
            else None
        )
        return Destination(
            channel_id=self.channel_id,
            guild_id=row.guild_id,
            message=message,
            # A 🔁 variation replies to the picture reacted to; a slash job's fallback reply
            # points at the message the user already had.
            reply_to=row.reply_to_message_id or row.progress_message_id,
        )

    async def refuse(self, client: discord.Client, text: str) -> None:
        row = self.row
        if row.progress_message_id is not None:
            channel = client.get_partial_messageable(self.channel_id, guild_id=row.guild_id)
            try:
                await channel.get_partial_message(row.progress_message_id).edit(
                    content=f"<@{row.user_id}> {text}", view=None
                )
                return
            except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
                log.info("job=%s: could not edit its message: %s", row.id, exc)
        await channel_notice(
            client,
            self.channel_id,
            row.user_id,
            text,
            guild_id=row.guild_id,
            reply_to=row.reply_to_message_id,
        )

    def describe(self) -> str:
        return f"resumed job={self.row.id}"


NewOrigin = CommandOrigin | ReactionOrigin | ButtonOrigin  # asks for a new job
Origin = NewOrigin | ResumedOrigin
VariationOrigin = ReactionOrigin | ButtonOrigin  # a new picture from an existing one
