"""A job row and the generation request it holds, each built from the other in one place.

`new_job()` makes the row to admit for a request; `request_from_job()` rebuilds the request from
a stored row (🔁, resume). The job's life itself is `bot.jobs.service.JobService`'s.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

from generation.types import GenerationRequest
from storage import JSON, NewJob

if TYPE_CHECKING:
    from storage import JobRecord


# Not a generation field: which picture of the replied-to result a 🎨 job was drawn from.
SOURCE_PICTURE = "source_picture"


def source_picture_of(job: JobRecord) -> int:
    """Which picture (1-based) of the message it replied to `job` was drawn from; 1 for rows
    that predate sets or say nothing usable."""
    value = job.request.get(SOURCE_PICTURE)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 1


def request_fields(request: GenerationRequest) -> dict[str, JSON]:
    """The request as the job row stores it: every field that JSON can hold, by its own name.

    Bytes (a source picture for image-to-image) are kept only for the job's life, never stored.
    """
    stored: dict[str, JSON] = {}
    for spec in fields(request):
        value = getattr(request, spec.name)
        if value is None or isinstance(value, str | int | float | bool):
            stored[spec.name] = value
    return stored


def request_from_job(job: JobRecord) -> GenerationRequest:
    """Rebuild the request from a stored job row (resume, 🔁). Keys the request no longer has
    are ignored and fields the row predates take their defaults."""
    known = {spec.name for spec in fields(GenerationRequest)}
    values: dict[str, Any] = {k: v for k, v in job.request.items() if k in known}
    return GenerationRequest(**values)


def request_as_drawn(job: JobRecord) -> GenerationRequest:
    """The request that draws this job's picture again: a job that asked for translation gives
    the texts the model was given (its outcome's `prompt_used`/`negative_used`) with
    `translate` off, so the same seed gives the same picture whatever the translator does
    today (🔁, 🎨 and ℹ️'s command line). Without a recorded outcome it is the stored request."""
    request = request_from_job(job)
    outcome = job.outcome or {}
    used, negative_used = outcome.get("prompt_used"), outcome.get("negative_used")
    if request.translate and isinstance(used, str) and used:
        request = replace(
            request,
            prompt=used,
            negative_prompt=negative_used if isinstance(negative_used, str) else "",
            translate=False,
        )
    return request


def new_job(
    request: GenerationRequest,
    *,
    user_id: int,
    guild_id: int | None,
    channel_id: int | None,
    locale: str,
    images: int = 1,
    interaction_expires_at: dt.datetime | None = None,
    parent_job_id: int | None = None,
    reply_to_message_id: int | None = None,
    source_picture: int | None = None,
) -> NewJob:
    """The job row to admit for `request` (the inverse of `request_from_job`).

    `source_picture`: for a picture drawn from a picture of a result (🎨), which of that
    message's pictures (1 is the first), kept beside the request's fields so 🔁 on the new
    picture reads the same one again (see `source_picture_of`)."""
    stored = request_fields(request)
    if source_picture is not None:
        stored[SOURCE_PICTURE] = source_picture
    return NewJob(
        user_id=user_id,
        guild_id=guild_id,
        channel_id=channel_id,
        request=stored,
        images=images,
        locale=locale,
        interaction_expires_at=interaction_expires_at,
        parent_job_id=parent_job_id,
        reply_to_message_id=reply_to_message_id,
    )
