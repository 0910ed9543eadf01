"""Source pictures for image-to-image (🎨 and `/pokemon image:`), read from Discord and checked
before anything is queued or charged.

The checks go in order of cost, so a bad upload costs the bot as little as possible: the size
Discord states for the attachment (nothing over 10 MB is downloaded), then, once downloaded,
`generation.images.check_image_bytes` off the event loop (the real size, the file signature
PNG/JPEG/WebP, the pixel count from the header, and only then the pixels). Each failure is one
localized `UserFacingError`. The bytes are kept only in the job's request (`init_image`), never
stored: a job resumed after a restart has no source and is refused (`error.source_gone`).
"""

from __future__ import annotations

import asyncio
import logging

import discord

from bot.errors import UserFacingError
from bot.messaging import TRANSIENT_ERRORS
from generation.images import (
    MAX_IMAGE_BYTES,
    BadInputImageError,
    InputImageTooLargeError,
    InputImageTypeError,
    check_image_bytes,
)

log = logging.getLogger(__name__)


async def read_attachment(attachment: discord.Attachment) -> bytes:
    """The attachment's bytes, once they are known to be an acceptable source picture."""
    if attachment.size > MAX_IMAGE_BYTES:
        raise UserFacingError("error.image_too_large")
    try:
        data = await attachment.read()
    except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
        log.info("could not download attachment %s: %s", attachment.id, exc)
        raise UserFacingError("error.image_unavailable") from None
    await check_source(data)
    return data


async def read_result_picture(message: discord.Message, picture: int = 1) -> bytes:
    """Picture `picture` (1 is the first) of one of the bot's result messages (what 🎨
    varies); a set's pictures are its attachments in order."""
    if not 1 <= picture <= len(message.attachments):
        raise UserFacingError("error.source_gone")
    return await read_attachment(message.attachments[picture - 1])


async def check_source(data: bytes) -> None:
    """Refuse bytes that are not a usable source picture (decoding runs in a thread)."""
    try:
        await asyncio.to_thread(check_image_bytes, data)
    except InputImageTooLargeError:
        raise UserFacingError("error.image_too_large") from None
    except InputImageTypeError:
        raise UserFacingError("error.image_type") from None
    except BadInputImageError as exc:
        log.info("refused a broken source picture: %s", exc)
        raise UserFacingError("error.image_broken") from None
