"""The `parameters` text in AUTOMATIC1111's format."""

from __future__ import annotations

from generation.pnginfo import a1111_parameters
from generation.types import GenerationRequest

MODEL = "svjack/Stable-Diffusion-Pokemon-ja"


def test_the_text_has_the_web_uis_three_parts() -> None:
    request = GenerationRequest(
        prompt="青い炎の猫", negative_prompt="ぼやけた", seed=123, steps=25, guidance=7.5
    )
    assert a1111_parameters(request, 123, MODEL) == (
        "青い炎の猫\n"
        "Negative prompt: ぼやけた\n"
        "Steps: 25, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 123, Size: 512x512, "
        f"Model: {MODEL}"
    )


def test_no_negative_line_without_a_negative_prompt_and_lms_named_as_the_web_ui_does() -> None:
    request = GenerationRequest(prompt="猫", steps=3, guidance=7.0, scheduler="lms", width=768)
    text = a1111_parameters(request, 9, MODEL)
    assert text.splitlines() == [
        "猫",
        f"Steps: 3, Sampler: LMS, CFG scale: 7, Seed: 9, Size: 768x512, Model: {MODEL}",
    ]


def test_a_newline_in_the_prompt_cannot_forge_a_line() -> None:
    request = GenerationRequest(prompt="猫\nSteps: 999")
    assert a1111_parameters(request, 1, MODEL).splitlines()[0] == "猫 Steps: 999"
