"""The presentation side of the job layer: every text, embed and `discord.ui` item a job's
message shows (`bot.jobs.presenter.Presenter`). It never touches storage or the generator.

The buttons come from the interaction side (`bot.buttons`): `bot.client` passes its two
builders in, so neither the job layer nor this module imports them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import discord

from bot.i18n import catalog, t
from bot.messaging import escape_user_text, progress_bar, quota_text, relative, result_embed
from generation.types import DRAW, UPSCALE

if TYPE_CHECKING:
    from bot.jobs.presenter import ResultCard, UpscaleCard


# A running job's progress line, by the kind of request: steps drawn, or tiles upscaled.
PROGRESS_KEYS = {DRAW: "pokemon.progress", UPSCALE: "upscale.progress"}

# Codes a job ends with that the bot decides, not the generator: their text is the refusal's.
ENDED_BY_THE_BOT = {"prompt_blocked": "error.prompt_blocked"}


class ResultButtons(Protocol):
    def __call__(self, job_id: int, locale: str, *, pictures: int = 1) -> discord.ui.View: ...


class Presentation:
    """`Presenter` for the bot: the catalog's texts, `result_embed`, and the buttons."""

    def __init__(
        self,
        *,
        cancel_buttons: Callable[[int, str], discord.ui.View],
        result_buttons: ResultButtons,
        upscaled_buttons: Callable[[int, str], discord.ui.View] | None = None,
    ) -> None:
        self._cancel_buttons = cancel_buttons
        self._result_buttons = result_buttons
        self._upscaled_buttons = upscaled_buttons

    def queued_text(self, locale: str, position: int, eta_seconds: float | None) -> str:
        if eta_seconds is None:
            return t("pokemon.queued_no_eta", locale, position=position)
        when = relative(discord.utils.utcnow() + dt.timedelta(seconds=eta_seconds))
        return t("pokemon.queued", locale, position=position, eta=when)

    def progress_text(self, locale: str, step: int, total: int, *, kind: str = DRAW) -> str:
        key = PROGRESS_KEYS.get(kind, PROGRESS_KEYS[DRAW])
        return t(key, locale, bar=progress_bar(step, total), step=step, total=total)

    def posting_text(self, locale: str) -> str:
        return t("pokemon.posting", locale)

    def cancelled_text(self, locale: str, by_user_id: int) -> str:
        return t("job.cancelled_by", locale, user=f"<@{by_user_id}>")

    def ended_text(self, locale: str, code: str) -> str:
        key = ENDED_BY_THE_BOT.get(code, f"error.gen.{code}")
        return t(key if key in catalog("en") else "error.gen.generation_failed", locale)

    def expired_text(self, locale: str) -> str:
        return t("pokemon.resume_expired", locale)

    def already_drawing_text(self, locale: str, position: int | None) -> str:
        if position:  # waiting in the queue, `position` batches before it
            return t("regen.already_pending_place", locale, position=position)
        return t("regen.already_pending", locale)  # drawing, or its place not known yet

    def progress_view(self, job_id: int, locale: str) -> discord.ui.View | None:
        return self._cancel_buttons(job_id, locale)

    def result_view(self, job_id: int, locale: str, *, pictures: int) -> discord.ui.View | None:
        return self._result_buttons(job_id, locale, pictures=pictures)

    def result_embed(self, locale: str, card: ResultCard) -> discord.Embed:
        return result_embed(
            locale,
            prompt=card.prompt,
            negative_prompt=card.negative_prompt,
            seeds=card.seeds,
            steps=card.steps,
            seconds=card.seconds,
            user_id=card.user_id,
            quota=card.quota,
            truncated=card.truncated,
            parent_job_id=card.parent_job_id,
            used=card.used,
            untranslated=card.untranslated,
            strength=card.strength,
            withheld=card.withheld,
            guidance=card.guidance,
            sampler=card.sampler,
            size=card.size,
            model=card.model,
            notes=card.notes,
        )

    def upscaled_view(self, job_id: int, locale: str) -> discord.ui.View | None:
        return None if self._upscaled_buttons is None else self._upscaled_buttons(job_id, locale)

    def upscaled_embed(self, locale: str, card: UpscaleCard) -> discord.Embed:
        """Small: the new size, the job it came from, the upscaler, who asked and their quota
        (it counted as one picture), and a note when it is not a PNG."""
        width, height = card.size
        embed = discord.Embed(
            title=t("upscale.title", locale, width=width, height=height),
            colour=discord.Colour.from_rgb(238, 21, 21),
        )
        embed.set_image(url=f"attachment://{card.filename}")
        if card.source_job_id is not None:
            embed.add_field(name=t("upscale.field_from", locale), value=f"#{card.source_job_id}")
        embed.add_field(
            name=t("upscale.field_upscaler", locale), value=escape_user_text(card.upscaler, 200)
        )
        embed.add_field(name=t("pokemon.field_time", locale), value=f"{card.seconds:.1f} s")
        embed.add_field(name=t("pokemon.field_requester", locale), value=f"<@{card.user_id}>")
        if card.quota is not None:
            embed.add_field(
                name=t("pokemon.field_quota", locale),
                value=t("upscale.counts", locale) + "\n" + quota_text(card.quota, locale),
            )
        if card.format != "png":
            note = t("upscale.not_png", locale, format=card.format.upper())
            embed.add_field(name="ℹ️", value=note, inline=False)
        embed.set_footer(text=t("upscale.footer", locale, job=card.source_job_id or "?"))
        return embed
