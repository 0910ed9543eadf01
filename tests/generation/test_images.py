"""Source pictures for image-to-image: the byte, type and pixel limits come before decoding."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from generation.images import (
    MAX_IMAGE_BYTES,
    BadInputImageError,
    InputImageTooLargeError,
    InputImageTypeError,
    check_image_bytes,
    decode_image,
)


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gradient(width: int, height: int, mode: str = "RGB") -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    rgb = np.stack([x, y, 255 - x], axis=-1)
    return Image.fromarray(rgb, "RGB").convert(mode)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims `width`x`height` and whose pixel data is a few bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_png_jpeg_and_webp_are_accepted_with_their_size(fmt):
    data = encoded(gradient(40, 24), fmt)
    assert check_image_bytes(data) == (fmt, 40, 24)


def test_gif_is_refused_as_the_wrong_type():
    with pytest.raises(InputImageTypeError) as caught:
        check_image_bytes(encoded(gradient(8, 8), "GIF"))
    assert caught.value.code == "input_image_type"
    assert caught.value.ours is False


def test_a_text_file_is_refused_as_the_wrong_type():
    with pytest.raises(InputImageTypeError):
        check_image_bytes(b"hello, this is not a picture\n" * 10)


def test_more_than_10_mb_is_refused_before_anything_is_parsed():
    data = encoded(gradient(8, 8), "PNG")
    padded = data + b"\x00" * (MAX_IMAGE_BYTES + 1 - len(data))
    with pytest.raises(InputImageTooLargeError) as caught:
        check_image_bytes(padded)
    assert caught.value.code == "input_image_too_large"
    assert "10 MB" in str(caught.value)


def test_a_decompression_bomb_is_refused_from_its_header_without_decoding():
    # 5000x5000 claimed in ~60 bytes: decoding it would allocate 75 MB.
    bomb = png_header_only(5000, 5000)
    assert len(bomb) < 100
    with pytest.raises(InputImageTooLargeError, match="5000x5000"):
        check_image_bytes(bomb)


def test_just_under_the_pixel_cap_passes_the_header_check():
    # 4096x4096 is allowed by size; the tiny fake pixel data then fails to decode as broken.
    with pytest.raises(BadInputImageError) as caught:
        check_image_bytes(png_header_only(4096, 4096))
    assert type(caught.value) is BadInputImageError


def test_a_truncated_png_is_refused_as_broken():
    data = encoded(gradient(64, 64), "PNG")
    with pytest.raises(BadInputImageError) as caught:
        check_image_bytes(data[: len(data) // 2])
    assert caught.value.code == "bad_input_image"
    assert "PNG" in str(caught.value)


def test_a_png_signature_with_garbage_after_it_is_refused_as_broken():
    with pytest.raises(BadInputImageError) as caught:
        check_image_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    assert type(caught.value) is BadInputImageError


def test_each_refusal_is_one_line():
    for data in (b"x", png_header_only(9000, 9000), b"\x89PNG\r\n\x1a\nbroken"):
        with pytest.raises(BadInputImageError) as caught:
            check_image_bytes(data)
        assert "\n" not in str(caught.value)


def test_decode_resizes_to_the_requested_size_as_rgb():
    image = decode_image(encoded(gradient(100, 80, "L"), "JPEG"), 64, 48)
    assert image.mode == "RGB"
    assert image.size == (64, 48)


def test_decode_keeps_an_image_of_the_right_size_pixel_for_pixel():
    source = gradient(32, 32)
    image = decode_image(encoded(source, "PNG"), 32, 32)
    assert np.array_equal(np.asarray(image), np.asarray(source))


def test_transparent_pixels_become_white():
    rgba = Image.new("RGBA", (16, 16), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 8, 16))
    pixels = np.asarray(decode_image(encoded(rgba, "PNG"), 16, 16))
    assert tuple(pixels[0, 15]) == (255, 255, 255)
    assert tuple(pixels[0, 0]) == (0, 0, 255)


def test_exif_orientation_is_applied():
    wide = gradient(40, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = encoded(wide, "JPEG", exif=exif.tobytes())
    assert decode_image(data, 20, 40).size == (20, 40)
    # Without the rotation the 40x20 picture would have been squashed into 20x40: the left
    # column of the stored picture (dark red) becomes the top row once rotated.
    upright = np.asarray(decode_image(data, 20, 40)).astype(int)
    assert upright[0, :, 0].mean() < 60
    assert upright[-1, :, 0].mean() > 190


def test_check_image_bytes_imports_no_torch():
    code = (
        "import sys; from generation.images import check_image_bytes; print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
