"""The fake engine: its options, its sleeps' shape, per-member failure, cancel, real PNGs."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from generation.errors import GenerationError, JobCancelledError, ModelLoadError
from generation.fake_engine import FakeEngine, FakeOptions, is_fake, open_engine, parse, tiny_png
from generation.types import GeneratedImage, GenerationRequest


def req(prompt: str, steps: int = 2) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, steps=steps, height=64, width=64, seed=0x123456)


def test_options_parse_from_the_model_setting() -> None:
    assert is_fake("fake:")
    assert not is_fake("svjack/Stable-Diffusion-Pokemon-ja")
    assert parse("fake:") == FakeOptions()
    assert parse("fake:step=0.05, member=0.01,decode=0.2,fail=bad,crash=boom") == FakeOptions(
        step=0.05, member=0.01, decode=0.2, fail="bad", crash="boom"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("fake:speed=1", "'speed=1' is not name=value with a name in step, member"),
        ("fake:step", "'step' is not name=value"),
        ("fake:step=fast", "step='fast' is not a number"),
        ("fake:member=-1", "member must not be negative"),
    ],
)
def test_bad_options_are_one_clear_line(spec: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        parse(spec)


def test_a_step_costs_the_base_plus_each_further_member() -> None:
    engine = FakeEngine(FakeOptions(step=0.04, member=0.01))
    assert engine.step_seconds(1) == pytest.approx(0.04)
    assert engine.step_seconds(4) == pytest.approx(0.07)


def test_a_batch_reports_steps_fails_one_member_and_cancels_another() -> None:
    engine = open_engine("fake:step=0,fail=bad", device="auto")
    assert isinstance(engine, FakeEngine)
    steps: list[tuple[int, int]] = []
    out = engine.generate(
        [req("good"), req("bad one"), req("cancel me")],
        on_step=lambda step, total, _peek: steps.append((step, total)),
        is_cancelled=lambda index: index == 2,
    )
    assert steps == [(1, 2), (2, 2)]
    good, bad, cancelled = out
    assert isinstance(good, GeneratedImage)
    assert (good.seed, good.steps, good.width, good.height) == (0x123456, 2, 64, 64)
    # It translates nothing: it reports the texts it was given as the ones it used (empty
    # ones made the bot show an empty "translated" field, which Discord refuses).
    assert (good.prompt_used, good.negative_used) == ("good", "")
    assert isinstance(bad, GenerationError)
    assert "bad" in str(bad)
    assert isinstance(cancelled, JobCancelledError)


def test_the_picture_is_a_real_png_in_the_seeds_colour() -> None:
    image = Image.open(io.BytesIO(tiny_png(0x123456)))
    image.load()
    assert image.size == (8, 8)
    assert image.getpixel((3, 3)) == (0x12, 0x34, 0x56)
