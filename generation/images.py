"""Source pictures for image-to-image: checked before they are decoded, then decoded once.

Only Pillow is imported (no torch), so the bot may call `check_image_bytes` before it queues a
job and refuse a bad upload without charging for it. The limits are checked in order of cost:
the byte size, then the file signature (PNG, JPEG or WebP only; nothing else reaches a Pillow
decoder), then the pixel count read from the header, and only then are the pixels decoded, so a
small file that would expand to gigabytes (a decompression bomb) is refused unread.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from generation.errors import GenerationError, one_line

if TYPE_CHECKING:
    from PIL import Image

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGE_PIXELS = 4096 * 4096
FORMATS = ("PNG", "JPEG", "WEBP")


class BadInputImageError(GenerationError):
    """The source picture cannot be used: broken, or not a picture at all."""

    code = "bad_input_image"
    ours = False


class InputImageTooLargeError(BadInputImageError):
    """The source picture is over the byte or pixel limit."""

    code = "input_image_too_large"


class InputImageTypeError(BadInputImageError):
    """The source file is not a PNG, JPEG or WebP picture."""

    code = "input_image_type"


def sniff_format(data: bytes) -> str | None:
    """`PNG`, `JPEG` or `WEBP` from the file's signature, or None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def check_image_bytes(data: bytes) -> tuple[str, int, int]:
    """`(format, width, height)` of an acceptable source picture, or a `BadInputImageError`.

    Decodes the pixels once to prove the file is whole (at most 4096x4096, so well under a
    second of CPU): call it off the event loop.
    """
    image = _open(data)
    try:
        _load(image)
        return _format(image), image.width, image.height
    finally:
        image.close()


def decode_image(data: bytes, width: int, height: int) -> Image.Image:
    """The source picture as an RGB image of exactly `width`x`height` (stretched to fit).

    The EXIF orientation is applied (phone photos), and transparent pixels become white, the
    background the model's pictures have.
    """
    from PIL import Image, ImageOps

    image = _open(data)
    try:
        _load(image)
        upright = ImageOps.exif_transpose(image)
        if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info:
            rgba = upright.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            rgb = Image.alpha_composite(white, rgba).convert("RGB")
        else:
            rgb = upright.convert("RGB")
        if rgb.size != (width, height):
            rgb = rgb.resize((width, height), Image.Resampling.LANCZOS)
        return rgb
    finally:
        image.close()


def _open(data: bytes) -> Image.Image:
    """The picture opened (header only) once size, type and pixel count are known to be fine."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > MAX_IMAGE_BYTES:
        raise InputImageTooLargeError(
            f"the picture is {len(data) / 1024 / 1024:.1f} MB; at most "
            f"{MAX_IMAGE_BYTES // 1024 // 1024} MB is accepted"
        )
    kind = sniff_format(data)
    if kind is None:
        raise InputImageTypeError("the file is not a PNG, JPEG or WebP picture")
    try:
        image = Image.open(io.BytesIO(data), formats=[kind])
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise BadInputImageError(f"the {kind} picture is broken: {one_line(exc)}") from exc
    except Image.DecompressionBombError as exc:
        raise InputImageTooLargeError(f"the picture has too many pixels: {one_line(exc)}") from exc
    width, height = image.size
    if width < 1 or height < 1 or width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise InputImageTooLargeError(
            f"the picture is {width}x{height} pixels; at most {MAX_IMAGE_PIXELS:,} pixels "
            "(4096x4096) are accepted"
        )
    return image


def _load(image: Image.Image) -> None:
    from PIL import Image

    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise InputImageTooLargeError(f"the picture has too many pixels: {one_line(exc)}") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise BadInputImageError(
            f"the {_format(image)} picture is broken: {one_line(exc)}"
        ) from exc


def _format(image: Image.Image) -> str:
    return str(image.format or "image")
