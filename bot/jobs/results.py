"""What a result says about translation and quota: pure functions of a request and what the
generator reported."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from generation.translate import needs_translation

if TYPE_CHECKING:
    from generation.types import GenerationRequest
    from storage import Quota


def translation_shown(
    request: GenerationRequest, prompt_used: str, negative_used: str
) -> tuple[str, str] | None:
    """(prompt, negative) the model was given, when translation changed either; else None
    (also when the generator did not report them: an empty `prompt_used`)."""
    if not request.translate or not prompt_used:
        return None
    if (prompt_used, negative_used) == (request.prompt, request.negative_prompt):
        return None
    return prompt_used, negative_used


def without_job(quota: Quota, images: int) -> Quota:
    """`quota` as it reads once a job of `images` pictures, the newest counted, is refunded
    (the oldest counted job, which `reset_at` is about, stays; none is left when it was
    the only one)."""
    used = max(quota.used - images, 0)
    # As storage counts it: what the limit leaves, never below 0 (a lowered limit may be
    # exceeded); None when unlimited.
    remaining = None if quota.limit is None else max(0, quota.limit - used)
    return replace(quota, used=used, remaining=remaining, reset_at=quota.reset_at if used else None)


def untranslated(request: GenerationRequest, prompt_used: str, negative_used: str) -> bool:
    """Translation was asked for English text, but the model got the English (the translation
    model is not loaded, or failed): the result says so."""
    if not request.translate:
        return False
    return any(
        needs_translation(text) and used == text
        for text, used in (
            (request.prompt, prompt_used),
            (request.negative_prompt, negative_used),
        )
    )
