"""Raw `/pokemon` options → a `GenerationRequest`, or a `UserFacingError`. Pure: no I/O, no clock.

Discord already bounds the options (`app_commands.Range`), but a request can also come from a
🔁 reaction, a resumed job or a client that ignores the ranges, so every bound is checked again.
"""

from __future__ import annotations

import math
import random
import unicodedata
from collections.abc import Callable
from dataclasses import replace

from bot.errors import UserFacingError
from bot.settings import Settings
from generation.types import GenerationRequest

MAX_PROMPT_CHARS = 1000
MAX_NEGATIVE_CHARS = 1000
SEED_MAX = 2**32 - 1
MIN_STEPS = 1
MIN_GUIDANCE = 1.0
MAX_GUIDANCE = 20.0


def clean_text(text: str | None) -> str:
    """Drop format characters (zero-width, bidi controls, BOM), turn control characters into
    spaces, and strip the ends. Everything else, Japanese included, is kept as typed."""
    if not text:
        return ""
    out: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if category == "Cf":  # U+200B..U+200F, U+202A..U+202E, U+2060..U+2069, U+FEFF, ...
            continue
        if category == "Cc":  # newlines and tabs become spaces; NUL and friends too
            out.append(" ")
            continue
        out.append(char)
    return "".join(out).strip()


def random_seed() -> int:
    """A fresh seed in the range users may type."""
    return random.randint(0, SEED_MAX)


def validate_pokemon(
    settings: Settings,
    prompt: str | None,
    *,
    negative: str | None = None,
    seed: int | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    new_seed: Callable[[], int] = random_seed,
) -> GenerationRequest:
    """Check the options of one `/pokemon` call and build the request the worker will run.

    Missing options take the settings' defaults; a missing seed is drawn with `new_seed`.
    Raises `UserFacingError` with a catalog key naming the first problem found.
    """
    text = clean_text(prompt)
    if not text:
        raise UserFacingError("error.prompt_empty")
    if len(text) > MAX_PROMPT_CHARS:
        raise UserFacingError("error.prompt_too_long", length=len(text), max=MAX_PROMPT_CHARS)
    negative_text = clean_text(negative)
    if len(negative_text) > MAX_NEGATIVE_CHARS:
        raise UserFacingError(
            "error.negative_too_long", length=len(negative_text), max=MAX_NEGATIVE_CHARS
        )

    max_steps = settings.pokemon_max_steps
    if steps is None:
        steps = min(settings.pokemon_steps, max_steps)
    # The isinstance checks guard against callers that ignore the annotations (config, tests).
    if (
        isinstance(steps, bool)
        or not isinstance(steps, int)  # pyright: ignore[reportUnnecessaryIsInstance]
        or not MIN_STEPS <= steps <= max_steps
    ):
        raise UserFacingError("error.steps_range", min=MIN_STEPS, max=max_steps)

    if seed is None:
        seed = new_seed()
    if (
        isinstance(seed, bool)
        or not isinstance(seed, int)  # pyright: ignore[reportUnnecessaryIsInstance]
        or not 0 <= seed <= SEED_MAX
    ):
        raise UserFacingError("error.seed_range", max=SEED_MAX)

    if guidance is None:
        guidance = settings.pokemon_guidance
    if (
        isinstance(guidance, bool)
        or not isinstance(guidance, int | float)  # pyright: ignore[reportUnnecessaryIsInstance]
        or not math.isfinite(guidance)
        or not MIN_GUIDANCE <= guidance <= MAX_GUIDANCE
    ):
        raise UserFacingError("error.guidance_range", min=MIN_GUIDANCE, max=MAX_GUIDANCE)

    return GenerationRequest(
        prompt=text,
        negative_prompt=negative_text,
        seed=seed,
        steps=steps,
        guidance=float(guidance),
        height=settings.pokemon_size,
        width=settings.pokemon_size,
        scheduler=settings.pokemon_scheduler,
    )


def check_request(settings: Settings, request: GenerationRequest) -> GenerationRequest:
    """Check a request built earlier (a 🔁 of a stored job, a job resumed after a restart)
    against the settings in force now: an admin who lowered `POKEMON_MAX_STEPS` since is obeyed.

    The same rules as `/pokemon`'s options; every other field of the request is kept.
    Raises `UserFacingError` naming the first problem.
    """
    checked = validate_pokemon(
        settings,
        request.prompt,
        negative=request.negative_prompt,
        seed=request.seed,
        steps=request.steps,
        guidance=request.guidance,
    )
    return replace(request, prompt=checked.prompt, negative_prompt=checked.negative_prompt)
