"""⬆️ Upscale: a 4x larger copy of a result's picture, posted as a reply to it (the picture
itself untouched).

A job action of its own, in two parts. `Upscales.start` makes the request (kind `upscale`,
the pressed picture read from its message as 🎨 reads it, never stored) and hands it to an
`Intake` of its own: the same permission check, pending check ("already being drawn"),
admission (one picture of the presser's limit), submit, queue place, progress and ✖ as any
job. `UpscaleFollower` is that intake's follower: a finished upscale is delivered with the
small embed and buttons of an upscaled picture instead of a result card. An upscaled picture is
refused before anything is read or charged, and a picture over the upscaler's limit once read,
before it is charged. A job left by the last process has no source
picture any more and is refused on resume (`error.source_gone`), as a 🎨 job is.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import TYPE_CHECKING

import discord

from bot.errors import UserFacingError
from bot.i18n import t
from bot.jobs.follow import Follower
from bot.jobs.presenter import UpscaleCard
from bot.jobs.rows import request_from_job
from generation import metrics
from generation.types import UPSCALE, GenerationRequest, member_seed
from generation.upscale import MAX_SOURCE_PIXELS
from storage import JSON

if TYPE_CHECKING:
    from bot.jobs.intake import Intake
    from bot.jobs.state import ActiveJob
    from bot.origins import ButtonOrigin
    from generation.types import GenerationResult
    from storage import JobRecord

log = logging.getLogger(__name__)

EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}


def upscale_request(parent: JobRecord, picture: int) -> GenerationRequest:
    """The upscale of picture `picture` (1-based) of `parent`: no prompt, the source picture
    added by intake once read; the seed and size of that picture, for the row and the log."""
    drawn = request_from_job(parent)
    return GenerationRequest(
        prompt="",
        kind=UPSCALE,
        seed=member_seed(drawn.seed, picture - 1),
        steps=1,
        width=drawn.width,
        height=drawn.height,
        count=1,  # counts as one picture of the presser's limit
    )


def picture_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a checked picture's header."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size


class Upscales:
    """`JobService.upscale`: ⬆️ under a result."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    async def start(self, origin: ButtonOrigin) -> JobRecord | None:
        """Upscale `origin.picture` of the pressed result for whoever pressed; None when it was
        refused (said privately to them, nothing charged)."""
        parent = origin.parent
        if request_from_job(parent).kind == UPSCALE:
            await origin.refuse(self.intake.ctx.client, t("upscale.already", origin.locale))
            return None
        request = upscale_request(parent, origin.picture)
        read = self.intake.result_picture(origin, origin.message_id, origin.picture)

        async def source() -> bytes:  # checked like 🎨's, then against the upscaler's limit
            data = await read()
            width, height = await asyncio.to_thread(picture_size, data)
            if width * height > MAX_SOURCE_PIXELS:
                raise UserFacingError("error.gen.upscale_source_too_large")
            return data

        return await self.intake.start_child(origin, request, source)


class UpscaleFollower(Follower):
    """Follows an upscale as any job; delivers its picture with an upscaled picture's embed."""

    async def _deliver(self, active: ActiveJob, result: GenerationResult) -> None:
        row = await self._still_wanted(active)
        if row is None:
            return
        quota = await self._quota(active)
        image = result.first
        filename = f"pokemon-{image.seed}-x4.{EXTENSIONS.get(image.format, image.format)}"
        presenter = self.ctx.presenter
        card = UpscaleCard(
            size=(image.width, image.height),
            source_job_id=active.parent_job_id,
            upscaler=result.model,
            format=image.format,
            filename=filename,
            seconds=result.run_seconds,
            user_id=active.user_id,
            quota=quota,
        )
        outcome: dict[str, JSON] = {
            "seeds": [image.seed],
            "size": [image.width, image.height],
            "format": image.format,
            "model": result.model,
        }
        await self.delivery.deliver(
            active,
            embed=presenter.upscaled_embed(active.locale, card),
            files=[(filename, image.png)],
            outcome=outcome,
            refund=False,
            view=presenter.upscaled_view(active.job_id, active.locale),
            react=False,  # 🔁 and 🎨 draw from a drawing: not offered on an upscale
        )
        metrics.record_delivery((discord.utils.utcnow() - row.created_at).total_seconds())
        log.info("job=%s: upscaled to %dx%d (%s)", active.job_id, *card.size, image.format)
