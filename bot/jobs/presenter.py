"""What the job layer asks of the presentation side, which owns every text, embed and
`discord.ui` item it shows (`bot.presentation.Presentation`, given to `JobService` by the
composition root, `bot.client`). The job layer imports no module that builds `discord.ui`
items; it holds the views it is given only to hand them to Discord.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import discord

    from storage import Quota


@dataclass(frozen=True, slots=True)
class ResultCard:
    """What a finished picture's message says about it (the presentation makes the embed).

    `seeds`: one per picture, in the attachments' order; `used`: the (prompt, negative) the
    model was given when translation changed them; `untranslated`: English reached the model as
    typed; `strength`: painted over a source picture this much; `withheld`: pictures of the set
    that did not come out."""

    prompt: str
    negative_prompt: str
    seeds: Sequence[int]
    steps: int
    seconds: float
    user_id: int
    quota: Quota | None
    truncated: bool
    parent_job_id: int | None = None
    used: tuple[str, str] | None = None
    untranslated: bool = False
    strength: float | None = None
    withheld: int = 0
    guidance: float | None = None
    sampler: str | None = None
    size: tuple[int, int] | None = None
    model: str | None = None
    notes: Sequence[str] = ()  # one-line notices for the requester (bot.origins.CommandOrigin)


@dataclass(frozen=True, slots=True)
class UpscaleCard:
    """What an upscaled picture's message says: its size, the job it was upscaled from, the
    upscaler, its format ("png", or "webp"/"jpeg" when the PNG was over Discord's limit), the
    attachment's name, who asked and their quota (it counts as one picture)."""

    size: tuple[int, int]
    source_job_id: int | None
    upscaler: str
    format: str
    filename: str
    seconds: float
    user_id: int
    quota: Quota | None


class Presenter(Protocol):
    """Texts, embeds and buttons of a job's message, in the job's language."""

    def queued_text(self, locale: str, position: int, eta_seconds: float | None) -> str:
        """A queued job's place (1 = next) and, when known, when it is expected to start."""
        ...

    def progress_text(self, locale: str, step: int, total: int, *, kind: str = "draw") -> str:
        """A running job's progress: denoising steps of a drawing, tiles of an upscale."""
        ...

    def posting_text(self, locale: str) -> str:
        """The job's message just before its picture goes in (a placeholder)."""
        ...

    def cancelled_text(self, locale: str, by_user_id: int) -> str:
        """The job's message once a ✖ stopped it."""
        ...

    def ended_text(self, locale: str, code: str) -> str:
        """Why a job ended without a picture (its error code: `nsfw`, `prompt_blocked`, ...)."""
        ...

    def expired_text(self, locale: str) -> str:
        """A job from before a restart that had waited too long to be drawn."""
        ...

    def already_drawing_text(self, locale: str, position: int | None) -> str:
        """A repeated 🔁/🎨: the same variation is being drawn (`position`: its place in the
        queue, when it waits and that is known)."""
        ...

    def progress_view(self, job_id: int, locale: str) -> discord.ui.View | None:
        """The buttons under a queued or running job's message (✖ cancel)."""
        ...

    def result_view(self, job_id: int, locale: str, *, pictures: int) -> discord.ui.View | None:
        """The buttons under a finished job's pictures."""
        ...

    def result_embed(self, locale: str, card: ResultCard) -> discord.Embed:
        """The embed that carries a finished job's picture(s)."""
        ...

    def upscaled_view(self, job_id: int, locale: str) -> discord.ui.View | None:
        """The buttons under an upscaled picture."""
        ...

    def upscaled_embed(self, locale: str, card: UpscaleCard) -> discord.Embed:
        """The small embed that carries an upscaled picture."""
        ...
