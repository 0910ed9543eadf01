"""Live previews: SD 1.x latents → an RGB sketch → a small JPEG, per job of a batch."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from generation.preview import (
    PREVIEW_MAX_BYTES,
    SD1_LATENT_RGB,
    PreviewError,
    latents_to_rgb,
    members_preview,
    preview_jpeg,
)


def test_each_latent_channel_adds_its_factors_to_r_g_b() -> None:
    latents = torch.zeros(1, 4, 2, 2)
    latents[0, 3] = 1.0  # the fourth channel alone: mostly "less blue"
    rgb = latents_to_rgb(latents)

    expected = [round((1 + factor) / 2 * 255) for factor in SD1_LATENT_RGB[3]]
    assert rgb.shape == (1, 2, 2, 3)
    assert rgb.dtype == torch.uint8
    assert rgb[0, 0, 0].tolist() == expected


def test_values_past_the_range_are_clamped() -> None:
    rgb = latents_to_rgb(torch.full((1, 4, 1, 1), 100.0))
    assert all(0 <= value <= 255 for value in rgb.flatten().tolist())


def test_a_preview_is_a_small_jpeg_of_the_pictures_side_by_side() -> None:
    latents = torch.randn(3, 4, 64, 48, generator=torch.Generator().manual_seed(0))

    data = preview_jpeg(latents, side=64)
    picture = Image.open(io.BytesIO(data))

    assert picture.format == "JPEG"
    assert picture.size == (3 * 48, 64)  # each 64 high, keeping 48/64 of its width
    assert len(data) < PREVIEW_MAX_BYTES


def test_latents_of_the_wrong_shape_raise_preview_error() -> None:
    with pytest.raises(PreviewError):
        preview_jpeg(torch.zeros(1, 3, 8, 8))


def test_each_job_of_a_batch_gets_its_own_preview_and_a_failure_is_none() -> None:
    latents = torch.randn(3, 4, 16, 16, generator=torch.Generator().manual_seed(1))

    first, second = members_preview(latents, [(0, 1), (1, 3)])
    broken = members_preview(torch.zeros(2, 5, 8, 8), [(0, 2)])

    assert first is not None
    assert second is not None
    assert Image.open(io.BytesIO(first)).size == (128, 128)
    assert Image.open(io.BytesIO(second)).size == (256, 128)  # a set of two side by side
    assert broken == [None]
