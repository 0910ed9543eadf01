"""The `jobs` table: one row per generation, from admission to done/failed/cancelled."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import TypeGuard

from storage.database import Database, Tx
from storage.jsonvalue import check_text, decode_object, encode_object
from storage.timeutil import Clock, from_db, to_db
from storage.types import FAULTS, JSON, MAX_IMAGES, MAX_SEED, JobRecord, NewJob

_SELECT = (
    "SELECT id, user_id, guild_id, channel_id, request, images, locale, state, error_code, "
    "fault, outcome, cancelled_by, created_at, started_at, finished_at, "
    "interaction_expires_at, progress_message_id, result_message_id, parent_job_id, "
    "reply_to_message_id FROM jobs"
)

_INSERT = (
    "INSERT INTO jobs (user_id, guild_id, channel_id, request, images, locale, state, "
    "created_at, interaction_expires_at, parent_job_id, reply_to_message_id) "
    "VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)"
)


def job_from_row(row: sqlite3.Row) -> JobRecord:
    """A `jobs` row (every column, as `_SELECT` reads them) as a JobRecord."""
    created_at = from_db(row["created_at"])
    assert created_at is not None  # NOT NULL in the schema
    outcome = row["outcome"]
    return JobRecord(
        id=row["id"],
        user_id=row["user_id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        request=decode_object(row["request"]),
        images=row["images"],
        locale=row["locale"],
        state=row["state"],
        error_code=row["error_code"],
        fault=row["fault"],
        outcome=None if outcome is None else decode_object(outcome),
        cancelled_by=row["cancelled_by"],
        created_at=created_at,
        started_at=from_db(row["started_at"]),
        finished_at=from_db(row["finished_at"]),
        interaction_expires_at=from_db(row["interaction_expires_at"]),
        progress_message_id=row["progress_message_id"],
        result_message_id=row["result_message_id"],
        parent_job_id=row["parent_job_id"],
        reply_to_message_id=row["reply_to_message_id"],
    )


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def encode_request(job: NewJob) -> str:
    """The job's request as JSON text, after checking what storage relies on (ValueError)."""
    if not _whole(job.images) or not 1 <= job.images <= MAX_IMAGES:
        raise ValueError(
            f"images must be a whole number from 1 to {MAX_IMAGES}, not {job.images!r}"
        )
    check_text(job.locale, "locale")
    text = encode_object(job.request, "request")
    seed = job.request.get("seed")
    if seed is not None and (not _whole(seed) or not 0 <= seed <= MAX_SEED):
        raise ValueError(
            f"request['seed'] must be a whole number from 0 to {MAX_SEED}, not {seed!r}"
        )
    return text


async def insert_job(tx: Tx, job: NewJob, now: datetime, request: str) -> JobRecord:
    """Write a `queued` row inside the caller's transaction and read it back.

    `request` is `encode_request(job)`, made before the transaction began.
    """
    job_id = await tx.insert(
        _INSERT,
        (
            job.user_id,
            job.guild_id,
            job.channel_id,
            request,
            job.images,
            job.locale,
            to_db(now),
            to_db(job.interaction_expires_at),
            job.parent_job_id,
            job.reply_to_message_id,
        ),
    )
    row = await tx.fetchone(_SELECT + " WHERE id = ?", (job_id,))
    assert row is not None
    return job_from_row(row)


class JobRepository:
    """State changes and lookups on jobs. State changes return whether a row changed."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def get(self, job_id: int) -> JobRecord | None:
        """The job with this id, or None."""
        return await self._one(_SELECT + " WHERE id = ?", (job_id,))

    async def mark_running(self, job_id: int) -> bool:
        """queued → running (a running job restarted after a crash gets a new start time)."""
        return await self._change(
            "UPDATE jobs SET state = 'running', started_at = ? "
            "WHERE id = ? AND state IN ('queued', 'running')",
            (to_db(self._clock()), job_id),
        )

    async def mark_done(
        self,
        job_id: int,
        *,
        result_message_id: int | None = None,
        outcome: Mapping[str, JSON] | None = None,
        refund: bool = False,
    ) -> bool:
        """queued/running → done, with the message that shows the pictures if known, and what
        generation reported (`outcome`: seeds, the text actually used, ...) if given.
        `refund`: delivered worse than asked through our fault (fault `ours`): not counted
        against the quota (storage/limits.py)."""
        encoded = None if outcome is None else encode_object(outcome, "outcome")
        now = to_db(self._clock())
        return await self._change(
            "UPDATE jobs SET state = 'done', started_at = COALESCE(started_at, ?), "
            "finished_at = ?, result_message_id = COALESCE(?, result_message_id), "
            "outcome = COALESCE(?, outcome), fault = ? "
            "WHERE id = ? AND state IN ('queued', 'running')",
            (now, now, result_message_id, encoded, "ours" if refund else None, job_id),
        )

    async def mark_failed(self, job_id: int, error_code: str, *, fault: str) -> bool:
        """queued/running → failed. `fault` `ours`/`rejected` refunds the quota; `user` does not."""
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)}, not {fault!r}")
        return await self._change(
            "UPDATE jobs SET state = 'failed', error_code = ?, fault = ?, finished_at = ? "
            "WHERE id = ? AND state IN ('queued', 'running')",
            (error_code, fault, to_db(self._clock()), job_id),
        )

    async def mark_cancelled(self, job_id: int, *, by: int | None = None) -> bool:
        """queued/running → cancelled, by this user if given. Never counted against a quota."""
        return await self._change(
            "UPDATE jobs SET state = 'cancelled', finished_at = ?, cancelled_by = ? "
            "WHERE id = ? AND state IN ('queued', 'running')",
            (to_db(self._clock()), by, job_id),
        )

    async def set_message(
        self,
        job_id: int,
        *,
        progress_message_id: int | None = None,
        result_message_id: int | None = None,
    ) -> bool:
        """Record the message showing progress and/or the result; None leaves a value as is."""
        return await self._change(
            "UPDATE jobs SET progress_message_id = COALESCE(?, progress_message_id), "
            "result_message_id = COALESCE(?, result_message_id) WHERE id = ?",
            (progress_message_id, result_message_id, job_id),
        )

    async def by_result_message(self, message_id: int) -> JobRecord | None:
        """The job whose image is in this message (for 🔁 reactions)."""
        return await self._one(
            _SELECT + " WHERE result_message_id = ? ORDER BY id DESC LIMIT 1", (message_id,)
        )

    async def by_progress_message(self, message_id: int) -> JobRecord | None:
        """The job whose queue place or progress this message shows (for the cancel button)."""
        return await self._one(
            _SELECT + " WHERE progress_message_id = ? ORDER BY id DESC LIMIT 1", (message_id,)
        )

    async def by_user_pending(self, user_id: int) -> list[JobRecord]:
        """One user's queued or running jobs in every guild, oldest first (to cancel them)."""
        return await self._many(
            _SELECT + " WHERE user_id = ? AND state IN ('queued', 'running') "
            "ORDER BY created_at, id",
            (user_id,),
        )

    async def pending(self) -> list[JobRecord]:
        """Queued or running jobs, oldest first: what to resume after a restart."""
        return await self._many(
            _SELECT + " WHERE state IN ('queued', 'running') ORDER BY created_at, id", ()
        )

    async def find_pending(self, user_id: int, *, parent_job_id: int | None) -> JobRecord | None:
        """This user's unfinished job with this parent (stops duplicate regenerations)."""
        return await self._one(
            _SELECT + " WHERE user_id = ? AND parent_job_id IS ? "
            "AND state IN ('queued', 'running') ORDER BY created_at, id LIMIT 1",
            (user_id, parent_job_id),
        )

    async def recent_for_user(
        self, user_id: int, guild_id: int | None = None, limit: int = 10
    ) -> list[JobRecord]:
        """A user's latest jobs, newest first; in one guild, or everywhere when guild_id is None."""
        if guild_id is None:
            return await self._many(
                _SELECT + " WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
                (user_id, limit),
            )
        return await self._many(
            _SELECT + " WHERE user_id = ? AND guild_id = ? "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            (user_id, guild_id, limit),
        )

    async def history(
        self, user_id: int, guild_id: int, *, limit: int = 25, offset: int = 0
    ) -> list[JobRecord]:
        """`/history`: the user's delivered pictures in one server, newest first (a page of
        `limit` from `offset`)."""
        return await self._many(
            _SELECT + " WHERE user_id = ? AND guild_id = ? AND state = 'done' "
            "AND result_message_id IS NOT NULL "
            "ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
            (user_id, guild_id, limit, offset),
        )

    async def _one(self, sql: str, params: tuple[object, ...]) -> JobRecord | None:
        row = await self._db.read(lambda tx: tx.fetchone(sql, params))
        return None if row is None else job_from_row(row)

    async def _many(self, sql: str, params: tuple[object, ...]) -> list[JobRecord]:
        rows = await self._db.read(lambda tx: tx.fetchall(sql, params))
        return [job_from_row(row) for row in rows]

    async def _change(self, sql: str, params: tuple[object, ...]) -> bool:
        return await self._db.write(lambda tx: tx.execute(sql, params)) > 0
