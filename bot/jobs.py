"""A job row and the generation request it holds, each built from the other in one place.

`new_job()` makes the row to admit for a request; `request_from_job()` rebuilds the request from
a stored row (🔁, resume). The job's life itself is `bot.service.JobService`'s.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from generation.types import GenerationRequest
from storage import NewJob

if TYPE_CHECKING:
    from storage import JobRecord


def request_from_job(job: JobRecord) -> GenerationRequest:
    """Rebuild the worker's request from a stored job row (resume, 🔁)."""
    return GenerationRequest(
        prompt=job.prompt,
        negative_prompt=job.negative_prompt or "",
        seed=job.seed,
        steps=job.steps,
        guidance=job.guidance,
        height=job.height,
        width=job.width,
        scheduler=job.scheduler,
    )


def new_job(
    request: GenerationRequest,
    *,
    user_id: int,
    guild_id: int | None,
    channel_id: int | None,
    locale: str,
    interaction_expires_at: dt.datetime | None = None,
    parent_job_id: int | None = None,
    reply_to_message_id: int | None = None,
) -> NewJob:
    """The job row to admit for `request` (the inverse of `request_from_job`)."""
    return NewJob(
        user_id=user_id,
        guild_id=guild_id,
        channel_id=channel_id,
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        seed=request.seed,
        steps=request.steps,
        guidance=request.guidance,
        width=request.width,
        height=request.height,
        scheduler=request.scheduler,
        locale=locale,
        interaction_expires_at=interaction_expires_at,
        parent_job_id=parent_job_id,
        reply_to_message_id=reply_to_message_id,
    )
