"""The `parameters` text chunk AUTOMATIC1111's web UI writes into its PNGs, for ours.

Pure: no torch, no PIL. Tools people already use (the web UI's "PNG Info" tab, ComfyUI,
image viewers) read this text, so a picture carries how it was made wherever it goes:

    <prompt>
    Negative prompt: <negative prompt>
    Steps: 25, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 123, Size: 512x512, Model: …

The web UI omits the "Negative prompt" line when there is none; so do we.
"""

from __future__ import annotations

from generation.types import GenerationRequest

PNG_PARAMETERS_KEY = "parameters"  # the tEXt keyword the web UI reads and writes

# Our scheduler names as the web UI names its samplers (schedulers.py: DPM-Solver++ 2M with
# Karras sigmas; LMS with the model card's linear-spaced sigmas).
SAMPLER_NAMES: dict[str, str] = {"dpmpp-2m": "DPM++ 2M Karras", "lms": "LMS"}


def sampler_name(scheduler: str) -> str:
    """The web UI's name for one of our schedulers (our own name if it has none)."""
    return SAMPLER_NAMES.get(scheduler, scheduler)


def _one_line(text: str) -> str:
    # A newline inside the prompt would start a line the readers take for another field.
    return " ".join(text.split())


def _number(value: float) -> str:
    """7.0 → "7", 7.5 → "7.5", as the web UI prints its CFG scale."""
    return f"{value:g}"


def a1111_parameters(
    request: GenerationRequest,
    seed: int,
    model: str,
    *,
    prompt: str | None = None,
    negative: str | None = None,
) -> str:
    """The `parameters` text for one picture of `request` drawn with `seed` by `model`.

    `prompt`/`negative` override the request's texts (the text the model was actually given,
    after translation); by default the request's own are written."""
    prompt_text = _one_line(request.prompt if prompt is None else prompt)
    negative_text = _one_line(request.negative_prompt if negative is None else negative)
    lines = [prompt_text]
    if negative_text:
        lines.append(f"Negative prompt: {negative_text}")
    fields = [
        f"Steps: {request.steps}",
        f"Sampler: {sampler_name(request.scheduler)}",
        f"CFG scale: {_number(request.guidance)}",
        f"Seed: {seed}",
        f"Size: {request.width}x{request.height}",
        f"Model: {model}",
    ]
    if request.is_img2img:
        fields.append(f"Denoising strength: {_number(request.strength)}")
    lines.append(", ".join(fields))
    return "\n".join(lines)


def with_upscale(parameters: str | None, upscaler: str, scale: int) -> str:
    """`parameters` with the upscale step added to its fields line, as the web UI's Extras tab
    writes it (`Postprocess upscale by: 4, Postprocess upscaler: NAME`); just those fields when
    the source carried no parameters."""
    step = f"Postprocess upscale by: {scale}, Postprocess upscaler: {_one_line(upscaler)}"
    text = (parameters or "").rstrip()
    if not text:
        return step
    return f"{text}, {step}"
