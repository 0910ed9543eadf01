"""An upscaled picture as a file Discord takes: PNG when it fits, else lossless WebP, else JPEG.

Discord refuses attachments over 10 MB (without Nitro boosts), and a 2048² PNG of a busy
picture can pass that. So: the PNG (with the `parameters` text chunk); if it is over the limit, a
lossless WebP (the same pixels, usually a third smaller); if that is still over, the JPEG of the
highest quality under the limit. WebP and JPEG carry the same `parameters` text in their EXIF
UserComment, where AUTOMATIC1111's web UI writes and reads it for those formats. Pillow only.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from generation.errors import GenerationError
from generation.pnginfo import PNG_PARAMETERS_KEY

if TYPE_CHECKING:
    from PIL import Image

DISCORD_FILE_LIMIT = 10 * 1024 * 1024  # bytes: the most a bot may attach to one message
JPEG_QUALITIES = (50, 100)  # the JPEG fallback's quality is searched in this range
_EXIF_IFD = 0x8769  # the Exif sub-IFD
_USER_COMMENT = 0x9286  # its UserComment tag
_UNICODE = b"UNICODE\x00"  # UserComment's character-code prefix (then UTF-16, big-endian)

ImageFormat = Literal["png", "webp", "jpeg"]
EXTENSIONS: dict[ImageFormat, str] = {"png": ".png", "webp": ".webp", "jpeg": ".jpg"}


class EncodedTooLargeError(GenerationError):
    """Even the lowest JPEG quality allowed is over the limit: nothing can be sent."""

    code = "upscaled_too_large"


@dataclass(frozen=True, slots=True)
class Encoded:
    """The file's bytes and its format; `quality` for a JPEG, `png_bytes` what the PNG was."""

    data: bytes
    format: ImageFormat
    png_bytes: int
    quality: int | None = None

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def fallback(self) -> bool:
        """Whether the PNG was over the limit and another format was sent instead."""
        return self.format != "png"


def encode_within(
    image: Image.Image, parameters: str | None, *, limit: int = DISCORD_FILE_LIMIT
) -> Encoded:
    """`image` as PNG, else lossless WebP, else the best JPEG of at most `limit` bytes."""
    png = encode_png(image, parameters)
    if len(png) <= limit:
        return Encoded(png, "png", len(png))
    webp = _save(image, "WEBP", parameters, lossless=True)
    if len(webp) <= limit:
        return Encoded(webp, "webp", len(png))
    low, high = JPEG_QUALITIES
    best: bytes | None = None
    best_quality = low
    while low <= high:  # the quality → size curve rises: binary search for the highest that fits
        quality = (low + high) // 2
        data = _save(image, "JPEG", parameters, quality=quality)
        if len(data) <= limit:
            best, best_quality, low = data, quality, quality + 1
        else:
            high = quality - 1
    if best is None:
        raise EncodedTooLargeError(
            f"the {image.width}x{image.height} picture is over {limit / 1e6:.1f} MB even as a "
            f"JPEG of quality {JPEG_QUALITIES[0]}"
        )
    return Encoded(best, "jpeg", len(png), best_quality)


def encode_png(image: Image.Image, parameters: str | None) -> bytes:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if parameters:
        info.add_text(PNG_PARAMETERS_KEY, parameters)  # tEXt if Latin-1, else an iTXt chunk
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _save(image: Image.Image, form: str, parameters: str | None, **options: object) -> bytes:
    buffer = io.BytesIO()
    if parameters:
        options["exif"] = _exif_with_comment(parameters)
    image.save(buffer, format=form, **options)
    return buffer.getvalue()


def _exif_with_comment(text: str) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif.get_ifd(_EXIF_IFD)[_USER_COMMENT] = _UNICODE + text.encode("utf-16-be")
    return exif.tobytes()


def read_parameters(image: Image.Image) -> str | None:
    """The `parameters` text a picture carries: its PNG text chunk, or its EXIF UserComment."""
    text = image.info.get(PNG_PARAMETERS_KEY)
    if isinstance(text, str) and text.strip():
        return text
    comment = image.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    if not isinstance(comment, bytes) or len(comment) <= 8:
        return None
    prefix, body = comment[:8], comment[8:]
    try:
        if prefix == _UNICODE:
            # Big-endian as piexif writes it; a byte-order mark, if any, says otherwise.
            decoded = body.decode(
                "utf-16" if body[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-16-be"
            )
        elif prefix.rstrip(b"\x00") == b"ASCII":
            decoded = body.decode("ascii")
        else:
            return None
    except UnicodeDecodeError:
        return None
    return decoded.rstrip("\x00") or None
