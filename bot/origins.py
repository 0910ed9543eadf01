"""Where a job comes from: `/pokemon` (`CommandOrigin`), a reaction (`ReactionOrigin`) or a
button under a result (`ButtonOrigin`). The job service (`bot.service`) takes one of these
for every job it starts; the cogs and buttons build them. This module imports neither, so
that buttons (which the service puts under its messages) and the service do not import each
other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord

from bot.i18n import language_of

if TYPE_CHECKING:
    from storage import JobRecord


class FromInteraction:
    """Who asked, where, in which language: read from the origin's interaction."""

    __slots__ = ()
    interaction: discord.Interaction[Any]

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


@dataclass(slots=True)
class CommandOrigin(FromInteraction):
    """`/pokemon`: answered through the interaction (refusals ephemeral)."""

    interaction: discord.Interaction[Any]
    deferred: bool = False  # publicly, with "thinking…"
    message_id: int | None = None  # the original response, once deferred


@dataclass(frozen=True, slots=True)
class ReactionOrigin:
    """🔁 on a result: a variation of `parent` for whoever reacted, replying to that picture.
    A reaction cannot be answered privately, so refusals are short-lived channel notices."""

    user_id: int
    guild_id: int | None
    channel_id: int
    message_id: int  # the picture reacted to
    parent: JobRecord
    locale: str
    member: discord.Member | None = None  # with roles: for /pokemon's Integrations settings
    picture: int = 1  # which picture of a set 🎨 starts from (a reaction: the first)


@dataclass(slots=True)
class ButtonOrigin(FromInteraction):
    """🔁 (a button) under a result: a variation of `parent` for whoever pressed it. Like a
    reaction, the new job's messages are channel messages replying to the pressed picture;
    unlike one, refusals go privately to the presser through the press's interaction (which
    the button has already acknowledged without a visible change)."""

    interaction: discord.Interaction[Any]
    parent: JobRecord
    picture: int = 1  # which picture of a set the pressed 🎨 button names

    @property
    def message_id(self) -> int:
        message = self.interaction.message
        return message.id if message is not None else 0

    @property
    def member(self) -> discord.Member | None:
        user = self.interaction.user
        return user if isinstance(user, discord.Member) else None


Origin = CommandOrigin | ReactionOrigin | ButtonOrigin
VariationOrigin = ReactionOrigin | ButtonOrigin  # a new picture from an existing one
