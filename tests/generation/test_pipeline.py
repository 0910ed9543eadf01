"""Engine.generate on CPU with the tiny checkpoint: reference images, batching, cancellation, checks."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from generation.errors import (
    BadImageError,
    JobCancelledError,
    OutOfMemoryError,
    UnsafeImageError,
)
from generation.loader import load_engine
from generation.pipeline import Engine, _is_device_error
from generation.types import GeneratedImage, GenerationRequest

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
CASES = json.loads((REFERENCE / "images" / "cases.json").read_text("utf-8"))
TOLERANCE = 2  # out of 255, per pixel (tests/reference/README.md)


def request_for(case: dict, **changes: object) -> GenerationRequest:
    options = {
        "prompt": case["prompt"],
        "negative_prompt": case["negative_prompt"] or "",
        "seed": case["seed"],
        "steps": case["steps"],
        "guidance": case["guidance"],
        "height": case["height"],
        "width": case["width"],
        "scheduler": "lms",
    }
    options.update(changes)
    return GenerationRequest(**options)  # type: ignore[arg-type]


def pixels(result: object) -> np.ndarray:
    assert isinstance(result, GeneratedImage), f"expected an image, got {result!r}"
    return np.asarray(Image.open(io.BytesIO(result.png)), dtype=np.float64)


def reference(case: dict) -> np.ndarray:
    return np.load(REFERENCE / "images" / case["file"].replace(".png", ".npy")) * 255.0


@contextlib.contextmanager
def count_calls(engine: Engine) -> Iterator[dict[str, int]]:
    """Count UNet forward passes and VAE decodes (real calls, only counted)."""
    counts = {"unet": 0, "decode": 0}
    vae = engine.pipe.vae
    real_decode = vae.decode

    def decode(*args, **kwargs):
        counts["decode"] += 1
        return real_decode(*args, **kwargs)

    def on_unet(*_args) -> None:
        counts["unet"] += 1

    hook = engine.pipe.unet.register_forward_hook(on_unet)
    vae.decode = decode
    try:
        yield counts
    finally:
        hook.remove()
        del vae.decode


@pytest.fixture(scope="module")
def scratch_engine(tiny_model: Path) -> Engine:
    """A second engine whose weights tests may change (and restore); tiny_engine stays clean."""
    return load_engine(tiny_model, device="cpu", safety_checker=True)


@contextlib.contextmanager
def changed_parameter(parameter: torch.nn.Parameter, value: float) -> Iterator[None]:
    saved = parameter.detach().clone()
    with torch.no_grad():
        parameter.fill_(value)
    try:
        yield
    finally:
        with torch.no_grad():
            parameter.copy_(saved)


# -- the reference -------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_lms_image_matches_the_original_pipeline_within_2_of_255(tiny_engine, case):
    result = tiny_engine.generate([request_for(case)])[0]
    assert np.abs(pixels(result) - reference(case)).max() <= TOLERANCE


ORIGINAL = Path(__file__).parent / "data" / "original_0_8_1"
UNSEEN = json.loads((ORIGINAL / "cases.json").read_text("utf-8"))


@pytest.mark.parametrize("index", range(len(UNSEEN)), ids=[c["prompt"] for c in UNSEEN])
def test_lms_matches_diffusers_0_8_1_on_unseen_sizes_seeds_and_negatives(tiny_engine, index):
    """Images recorded from the original pipeline itself (see data/original_0_8_1/make_cases.py):
    non-square sizes, other seeds, guidance and step counts, negative prompts, a typed </s>."""
    case = UNSEEN[index]
    result = tiny_engine.generate([request_for(case)])[0]
    expected = np.load(ORIGINAL / f"case{index}.npy") * 255.0
    assert pixels(result).shape == expected.shape
    assert np.abs(pixels(result) - expected).max() <= TOLERANCE


def test_same_case_at_another_seed_differs_from_the_reference(tiny_engine):
    case = CASES[0]
    result = tiny_engine.generate([request_for(case, seed=case["seed"] + 1)])[0]
    assert np.abs(pixels(result) - reference(case)).max() > 10


def test_negative_prompt_changes_the_image(tiny_engine):
    case = CASES[1]
    result = tiny_engine.generate([request_for(case, negative_prompt="")])[0]
    assert np.abs(pixels(result) - reference(case)).max() > 10


def test_result_carries_seed_size_steps_token_count_and_timings(tiny_engine):
    case = CASES[1]
    result = tiny_engine.generate([request_for(case)])[0]
    assert isinstance(result, GeneratedImage)
    assert (result.seed, result.steps, result.width, result.height) == (1234, 4, 64, 64)
    assert result.token_count == tiny_engine.tokenize(case["prompt"]).count == 18
    assert result.truncated is False
    assert set(result.timings) == {"encode", "denoise", "decode", "safety", "png"}
    assert all(value >= 0 for value in result.timings.values())
    assert result.png.startswith(b"\x89PNG\r\n\x1a\n")


def test_long_prompt_result_reports_truncation(tiny_engine):
    result = tiny_engine.generate([request_for(CASES[0], prompt="青いドラゴン、" * 40, steps=1)])[0]
    assert isinstance(result, GeneratedImage)
    assert result.truncated is True
    assert result.token_count > 77


def test_engine_tokenize_is_the_rinna_tokenizer(tiny_engine):
    tokens = json.loads((REFERENCE / "tokens.json").read_text("utf-8"))
    for case in tokens:
        assert list(tiny_engine.tokenize(case["prompt"]).ids) == case["input_ids"]


def test_dpmpp_2m_produces_a_valid_image_different_from_lms(tiny_engine):
    case = CASES[0]
    result = tiny_engine.generate([request_for(case, scheduler="dpmpp-2m", steps=5)])[0]
    image = pixels(result)
    assert image.shape == (64, 64, 3)
    assert image.max() > 0
    assert np.abs(image - reference(case)).max() > TOLERANCE


# -- batching --------------------------------------------------------------------------------


def test_batched_member_equals_the_same_job_alone(tiny_engine):
    case = CASES[1]
    first = request_for(case)
    second = request_for(case, prompt="漫画の鳥", negative_prompt="", seed=99)
    together = tiny_engine.generate([first, second])
    alone = [tiny_engine.generate([r])[0] for r in (first, second)]
    for batched, single in zip(together, alone, strict=True):
        assert np.abs(pixels(batched) - pixels(single)).max() <= TOLERANCE
    assert np.abs(pixels(together[0]) - reference(case)).max() <= TOLERANCE


def test_batch_with_different_batch_keys_is_refused(tiny_engine):
    with pytest.raises(ValueError, match="batch_key"):
        tiny_engine.generate([request_for(CASES[0]), request_for(CASES[0], steps=2)])


def test_empty_batch_is_refused(tiny_engine):
    with pytest.raises(ValueError, match="at least one"):
        tiny_engine.generate([])


def test_on_step_reports_every_step_with_the_total(tiny_engine):
    steps: list[tuple[int, int]] = []
    tiny_engine.generate([request_for(CASES[1])], on_step=lambda s, t, _peek: steps.append((s, t)))
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_failing_progress_callback_does_not_lose_the_image(tiny_engine):
    def broken(_step: int, _total: int, _peek: object) -> None:
        raise RuntimeError("bug in a progress hook")

    result = tiny_engine.generate([request_for(CASES[1])], on_step=broken)[0]
    assert np.abs(pixels(result) - reference(CASES[1])).max() <= TOLERANCE


# -- cancellation ----------------------------------------------------------------------------


def test_cancelled_member_is_never_decoded_and_the_other_is_unchanged(tiny_engine):
    case = CASES[1]
    steps_seen: list[int] = []

    def cancelled(index: int) -> bool:
        return index == 1 and len(steps_seen) >= 1

    requests = [request_for(case), request_for(case, seed=5)]
    with count_calls(tiny_engine) as counts:
        results = tiny_engine.generate(
            requests, on_step=lambda s, _t, _peek: steps_seen.append(s), is_cancelled=cancelled
        )
    assert isinstance(results[1], JobCancelledError)
    assert np.abs(pixels(results[0]) - reference(case)).max() <= TOLERANCE
    assert counts["decode"] == 1


def test_all_members_cancelled_stops_within_one_step_and_decodes_nothing(tiny_engine):
    steps_seen: list[int] = []
    requests = [request_for(CASES[1], steps=20), request_for(CASES[1], steps=20, seed=7)]
    with count_calls(tiny_engine) as counts:
        results = tiny_engine.generate(
            requests,
            on_step=lambda s, _t, _peek: steps_seen.append(s),
            is_cancelled=lambda _i: len(steps_seen) >= 2,
        )
    assert all(isinstance(r, JobCancelledError) for r in results)
    assert counts["unet"] == 3  # steps 1 and 2 reported, step 3 ran before the poll
    assert counts["decode"] == 0


def test_member_cancelled_before_start_costs_no_work(tiny_engine):
    with count_calls(tiny_engine) as counts:
        results = tiny_engine.generate(
            [request_for(CASES[0]), request_for(CASES[0], seed=3)], is_cancelled=lambda i: i == 0
        )
    assert isinstance(results[0], JobCancelledError)
    assert isinstance(results[1], GeneratedImage)
    assert counts["decode"] == 1


def test_everything_cancelled_before_start_runs_nothing(tiny_engine):
    with count_calls(tiny_engine) as counts:
        results = tiny_engine.generate([request_for(CASES[0])], is_cancelled=lambda _i: True)
    assert isinstance(results[0], JobCancelledError)
    assert counts == {"unet": 0, "decode": 0}


# -- per-member checks -------------------------------------------------------------------------


def test_nan_output_is_bad_image_error(scratch_engine):
    with changed_parameter(scratch_engine.pipe.vae.post_quant_conv.weight, float("nan")):
        result = scratch_engine.generate([request_for(CASES[0])])[0]
    assert isinstance(result, BadImageError)
    assert "NaN" in str(result)


def test_all_black_output_is_bad_image_error(scratch_engine):
    conv_out = scratch_engine.pipe.vae.decoder.conv_out
    with changed_parameter(conv_out.weight, 0.0), changed_parameter(conv_out.bias, -10.0):
        result = scratch_engine.generate([request_for(CASES[0])])[0]
    assert isinstance(result, BadImageError)
    assert "black" in str(result)


def test_flagged_image_is_unsafe_image_error_and_its_batch_mate_is_not_lost(scratch_engine):
    checker = scratch_engine.pipe.safety_checker
    # A negative threshold makes every image "match" a concept.
    with changed_parameter(checker.concept_embeds_weights, -2.0):
        flagged = scratch_engine.generate([request_for(CASES[0])])[0]
    assert isinstance(flagged, UnsafeImageError)
    assert flagged.ours is False
    assert isinstance(scratch_engine.generate([request_for(CASES[0])])[0], GeneratedImage)


def test_out_of_memory_raises_our_error_for_the_whole_call(scratch_engine):
    # The one mocked edge: a CPU cannot run out of GPU memory.
    def oom(*_args) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    hook = scratch_engine.pipe.unet.register_forward_pre_hook(oom)
    try:
        with pytest.raises(OutOfMemoryError):
            scratch_engine.generate([request_for(CASES[0])])
    finally:
        hook.remove()
    assert isinstance(scratch_engine.generate([request_for(CASES[0])])[0], GeneratedImage)


def test_cuda_runtime_errors_are_device_errors_only_on_cuda():
    illegal = RuntimeError("CUDA error: an illegal memory access was encountered")
    assert _is_device_error(illegal, "cuda")
    assert _is_device_error(illegal, "cuda:1")
    assert not _is_device_error(illegal, "cpu")
    assert not _is_device_error(RuntimeError("shape mismatch"), "cuda")


def test_use_scheduler_swaps_the_instance_a_request_runs_with(tiny_engine) -> None:
    from diffusers import LMSDiscreteScheduler

    from generation.schedulers import MODEL_CARD_BETAS

    stock = LMSDiscreteScheduler(**MODEL_CARD_BETAS)
    calls: list[int] = []
    original_step = stock.step

    def counting_step(*args, **kwargs):
        calls.append(1)
        return original_step(*args, **kwargs)

    stock.step = counting_step
    previous = tiny_engine._scheduler("lms")
    try:
        tiny_engine.use_scheduler("lms", stock)
        request = GenerationRequest(
            "漫画の鳥", seed=1, steps=3, height=64, width=64, scheduler="lms"
        )
        (image,) = tiny_engine.generate([request])
        assert not isinstance(image, Exception)
        assert len(calls) == 3
    finally:
        tiny_engine.use_scheduler("lms", previous)


def test_count_gives_one_picture_per_seed_each_equal_to_that_seed_alone(tiny_engine):
    many = request_for(CASES[0], seed=2**32 - 2, count=3)
    single = request_for(CASES[0], count=1)

    results = tiny_engine.generate([many, single])

    assert len(results) == 4
    # Seeds seed, seed+1, ... wrapping at 2**32, so each one can be typed back.
    assert [pixels_seed(r) for r in results] == [2**32 - 2, 2**32 - 1, 0, CASES[0]["seed"]]
    for result in results[:3]:
        alone = tiny_engine.generate([request_for(CASES[0], seed=pixels_seed(result))])[0]
        assert np.abs(pixels(result) - pixels(alone)).max() <= TOLERANCE
    assert len({pixels(r).tobytes() for r in results[:3]}) == 3


def test_cancelling_a_request_cancels_all_of_its_pictures(tiny_engine):
    results = tiny_engine.generate(
        [request_for(CASES[0], count=2), request_for(CASES[0], seed=3)],
        is_cancelled=lambda i: i == 0,
    )
    assert [type(r) for r in results] == [JobCancelledError, JobCancelledError, GeneratedImage]


def pixels_seed(result: object) -> int:
    assert isinstance(result, GeneratedImage), f"expected an image, got {result!r}"
    return result.seed
