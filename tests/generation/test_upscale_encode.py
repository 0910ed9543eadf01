"""Encoding an upscaled picture under Discord's limit: PNG, else lossless WebP, else the best JPEG
that fits; each carries the `parameters` text where the web UI reads it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from generation.upscale_encode import (
    DISCORD_FILE_LIMIT,
    JPEG_QUALITIES,
    EncodedTooLargeError,
    encode_png,
    encode_within,
    read_parameters,
)

TEXT = "ピカチュウ\nNegative prompt: ぼやけ\nSteps: 25, Seed: 1, Postprocess upscale by: 4"


def noisy(size: int = 256, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    base = np.stack([x, y, (x + y) // 2], -1).astype(float) % 256
    return Image.fromarray((base + rng.normal(0, 6, base.shape)).clip(0, 255).astype(np.uint8))


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_the_limit_is_discords_10_mb():
    assert DISCORD_FILE_LIMIT == 10 * 1024 * 1024


def test_under_the_limit_it_is_the_png_with_its_text_chunk():
    image = noisy()
    encoded = encode_within(image, TEXT)
    assert (encoded.format, encoded.extension, encoded.fallback) == ("png", ".png", False)
    assert encoded.data == encode_png(image, TEXT)
    assert opened(encoded.data).info["parameters"] == TEXT


def test_a_png_over_the_limit_becomes_a_lossless_webp_when_that_fits():
    image = noisy()
    png = encode_png(image, TEXT)
    encoded = encode_within(image, TEXT, limit=len(png) - 1)
    assert (encoded.format, encoded.extension, encoded.fallback) == ("webp", ".webp", True)
    assert encoded.png_bytes == len(png)
    assert len(encoded.data) < len(png)
    webp = opened(encoded.data)
    assert webp.format == "WEBP"
    assert (np.asarray(webp.convert("RGB")) == np.asarray(image)).all()
    assert read_parameters(webp) == TEXT


def test_when_webp_is_over_too_it_is_the_best_jpeg_under_the_limit():
    image = noisy()
    webp = encode_within(image, TEXT, limit=len(encode_png(image, TEXT)) - 1)
    limit = len(webp.data) // 3
    encoded = encode_within(image, TEXT, limit=limit)
    assert (encoded.format, encoded.extension) == ("jpeg", ".jpg")
    assert encoded.quality is not None
    assert JPEG_QUALITIES[0] <= encoded.quality < 100
    assert len(encoded.data) <= limit
    assert opened(encoded.data).format == "JPEG"
    assert read_parameters(opened(encoded.data)) == TEXT
    # The best: one step of quality more would not fit.
    better = encode_within(image, TEXT, limit=len(encoded.data) - 1)
    assert better.quality is not None
    assert better.quality < encoded.quality


def test_nothing_that_fits_is_an_error_not_a_larger_file():
    with pytest.raises(EncodedTooLargeError, match="even as a JPEG of quality 50"):
        encode_within(noisy(), TEXT, limit=1000)


def test_a_picture_without_parameters_reads_none():
    assert read_parameters(opened(encode_png(noisy(32), None))) is None
