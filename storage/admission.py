"""Atomic admission: check the rate limit and the pending cap, and insert the job, in one
`BEGIN IMMEDIATE` transaction, so two requests (coroutines, connections or processes) can
never both take the last slot.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from storage.database import Database, Tx
from storage.jobs import encode_request, insert_job
from storage.limits import resolve_limit, window_quota
from storage.timeutil import Clock
from storage.types import Admission, NewJob, Period

log = logging.getLogger(__name__)


async def admit(
    db: Database,
    clock: Clock,
    new_job: NewJob,
    *,
    owner_ids: Collection[int],
    default: tuple[int, Period],
    max_pending: int,
) -> Admission:
    """Admit and insert `new_job` as `queued`, or say which limit refused it and until when.

    Refusal order: blocked (limit 0), then rate_limit (fewer pictures remain than the job
    makes; with `retry_at`), then pending (a count of jobs, whatever their pictures).
    Owners bypass all three. A request storage cannot hold is a ValueError, raised before
    the transaction begins.
    """
    request = encode_request(new_job)

    async def work(tx: Tx) -> Admission:
        # Read the clock under the write lock so rows are stamped in commit order.
        now = clock()
        user, guild = new_job.user_id, new_job.guild_id
        limit = await resolve_limit(tx, guild, user, owner_ids=owner_ids, default=default)
        quota = await window_quota(tx, guild, user, limit, now, need=new_job.images)
        if limit.images is not None:
            if limit.images == 0:
                return Admission(False, None, "blocked", quota, None)
            assert quota.remaining is not None  # None only without a limit
            if quota.remaining < new_job.images:
                return Admission(False, None, "rate_limit", quota, quota.reset_at)
            pending = await tx.scalar(
                "SELECT COUNT(*) FROM jobs WHERE user_id = ? AND state IN ('queued', 'running')",
                (user,),
            )
            if pending >= max_pending:
                return Admission(False, None, "pending", quota, None)
        job = await insert_job(tx, new_job, now, request)
        quota = await window_quota(tx, guild, user, limit, now)
        return Admission(True, job, None, quota, None)

    admission = await db.write(work)
    if admission.admitted:
        assert admission.job is not None
        log.debug(
            "admitted job=%s user=%s guild=%s used=%s/%s",
            admission.job.id,
            new_job.user_id,
            new_job.guild_id,
            admission.quota.used,
            admission.quota.limit,
        )
    else:
        log.info(
            "refused user=%s guild=%s reason=%s used=%s/%s retry_at=%s",
            new_job.user_id,
            new_job.guild_id,
            admission.reason,
            admission.quota.used,
            admission.quota.limit,
            admission.retry_at,
        )
    return admission
