"""Rate limits: per-user (per guild) over guild default over the global default; the audit log.

A limit counts pictures: a job of four pictures (`jobs.images`) uses four. Which jobs count
(one definition, used by quotas and by admission): those created inside the sliding period
that are queued, running or done, or failed by the user's fault. Failures that were ours,
input rejected before running, cancelled jobs (queued or running), and done jobs marked as
our fault (delivered worse than asked, e.g. English drawn untranslated) are refunded by
simply not counting.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from datetime import datetime

from storage.database import Database, Tx
from storage.timeutil import Clock, from_db, period_delta, to_db
from storage.types import AuditEntry, EffectiveLimit, Period, Quota, UserLimit

# The pictures the user's counted jobs in the window use, and when the oldest of those jobs
# expire one by one, the creation time of the first job by whose expiry enough have freed:
# at least one, and enough that `need` pictures fit under the limit (the last two `?`).
# The sliding window is open at its start: a job created exactly one period ago no longer
# counts, which is the instant `reset_at` promises.
_WINDOW = (
    "WITH counted AS (SELECT created_at, SUM(images) OVER "
    "(ORDER BY created_at, id ROWS UNBOUNDED PRECEDING) AS freed FROM jobs "
    "WHERE user_id = ? AND guild_id IS ? AND created_at > ? "
    "AND (state IN ('queued', 'running') OR (state = 'done' AND fault IS NULL) "
    "OR (state = 'failed' AND fault = 'user'))), "
    "total AS (SELECT COALESCE(MAX(freed), 0) AS used FROM counted) "
    "SELECT used, (SELECT created_at FROM counted "
    "WHERE freed >= MAX(1, used - ? + ?) ORDER BY freed LIMIT 1) AS oldest FROM total"
)


def check_limit(images: int, period: str) -> tuple[int, Period]:
    """Validate a limit: a whole number of images ≥ 0 (0 blocks) per `hour` or `day`."""
    # The isinstance checks guard against callers that ignore the annotations (config, CLI).
    if (
        isinstance(images, bool)
        or not isinstance(images, int)  # pyright: ignore[reportUnnecessaryIsInstance]
        or images < 0
    ):
        raise ValueError(f"images must be a whole number, 0 or more, not {images!r}")
    period_delta(period)
    return images, period  # type: ignore[return-value]


async def resolve_limit(
    tx: Tx,
    guild_id: int | None,
    user_id: int,
    *,
    owner_ids: Collection[int],
    default: tuple[int, Period],
) -> EffectiveLimit:
    """The limit that applies: owner (none) > user override > guild default > global default."""
    if user_id in owner_ids:
        return EffectiveLimit(images=None, period=default[1], source="owner")
    if guild_id is not None:
        row = await tx.fetchone(
            "SELECT images, period FROM user_limits WHERE guild_id = ? AND user_id = ?",
            (guild_id, user_id),
        )
        if row is not None:
            return EffectiveLimit(images=row["images"], period=row["period"], source="user")
        row = await tx.fetchone(
            "SELECT images, period FROM guild_limits WHERE guild_id = ?", (guild_id,)
        )
        if row is not None:
            return EffectiveLimit(images=row["images"], period=row["period"], source="guild")
    return EffectiveLimit(images=default[0], period=default[1], source="global")


async def window_quota(
    tx: Tx,
    guild_id: int | None,
    user_id: int,
    limit: EffectiveLimit,
    now: datetime,
    *,
    need: int = 1,
) -> Quota:
    """Count the pictures of the user's counted jobs in the sliding period, and say when
    `need` pictures will be free (`reset_at`; with need=1, when the next used slot frees)."""
    period = period_delta(limit.period)
    cutoff = to_db(now - period)
    row = await tx.fetchone(_WINDOW, (user_id, guild_id, cutoff, limit.images or 0, need))
    assert row is not None  # `total` always has one row
    used = int(row["used"])
    if limit.images is None:
        return Quota(None, limit.period, used, None, None, limit.source)
    reset_at: datetime | None = None
    # Nothing frees what is not used, and no wait makes room for more than the limit.
    if used and 0 < need <= limit.images:
        oldest = from_db(row["oldest"])
        if oldest is not None:
            reset_at = oldest + period
    remaining = max(0, limit.images - used)
    return Quota(limit.images, limit.period, used, remaining, reset_at, limit.source)


def _audit_from_row(row: sqlite3.Row) -> AuditEntry:
    at = from_db(row["at"])
    assert at is not None
    return AuditEntry(
        id=row["id"],
        guild_id=row["guild_id"],
        actor_id=row["actor_id"],
        action=row["action"],
        target_user_id=row["target_user_id"],
        old_images=row["old_images"],
        old_period=row["old_period"],
        new_images=row["new_images"],
        new_period=row["new_period"],
        at=at,
    )


def _user_limit_from_row(row: sqlite3.Row) -> UserLimit:
    updated_at = from_db(row["updated_at"])
    assert updated_at is not None
    return UserLimit(
        guild_id=row["guild_id"],
        user_id=row["user_id"],
        images=row["images"],
        period=row["period"],
        updated_at=updated_at,
        updated_by=row["updated_by"],
    )


_AUDIT_INSERT = (
    "INSERT INTO limit_audit (guild_id, actor_id, action, target_user_id, old_images, "
    "old_period, new_images, new_period, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class LimitRepository:
    """Set, clear, resolve and audit rate limits. Every change writes an audit row."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        owner_ids: Collection[int],
        default: tuple[int, Period],
    ) -> None:
        self._db = db
        self._clock = clock
        self._owner_ids = frozenset(owner_ids)
        self._default = default

    async def set_user(
        self, guild_id: int, user_id: int, images: int, period: str, *, actor_id: int
    ) -> UserLimit:
        """Give one user their own limit in a guild (0 blocks them)."""
        images, period = check_limit(images, period)
        now = to_db(self._clock())

        async def work(tx: Tx) -> UserLimit:
            old = await tx.fetchone(
                "SELECT images, period FROM user_limits WHERE guild_id = ? AND user_id = ?",
                (guild_id, user_id),
            )
            await tx.execute(
                "INSERT INTO user_limits (guild_id, user_id, images, period, updated_at, "
                "updated_by) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, user_id) DO UPDATE "
                "SET images = excluded.images, period = excluded.period, "
                "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                (guild_id, user_id, images, period, now, actor_id),
            )
            await tx.execute(
                _AUDIT_INSERT,
                (
                    guild_id,
                    actor_id,
                    "set_user",
                    user_id,
                    old["images"] if old else None,
                    old["period"] if old else None,
                    images,
                    period,
                    now,
                ),
            )
            row = await tx.fetchone(
                "SELECT * FROM user_limits WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
            )
            assert row is not None
            return _user_limit_from_row(row)

        return await self._db.write(work)

    async def clear_user(self, guild_id: int, user_id: int, *, actor_id: int) -> bool:
        """Remove a user's own limit (they fall back to the guild default). False if none."""
        now = to_db(self._clock())

        async def work(tx: Tx) -> bool:
            old = await tx.fetchone(
                "SELECT images, period FROM user_limits WHERE guild_id = ? AND user_id = ?",
                (guild_id, user_id),
            )
            if old is None:
                return False
            await tx.execute(
                "DELETE FROM user_limits WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
            )
            await tx.execute(
                _AUDIT_INSERT,
                (guild_id, actor_id, "clear_user", user_id, old[0], old[1], None, None, now),
            )
            return True

        return await self._db.write(work)

    async def set_guild_default(
        self, guild_id: int, images: int, period: str, *, actor_id: int
    ) -> None:
        """Set the limit for everyone in a guild without their own."""
        images, period = check_limit(images, period)
        now = to_db(self._clock())

        async def work(tx: Tx) -> None:
            old = await tx.fetchone(
                "SELECT images, period FROM guild_limits WHERE guild_id = ?", (guild_id,)
            )
            await tx.execute(
                "INSERT INTO guild_limits (guild_id, images, period, updated_at, updated_by) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id) DO UPDATE SET "
                "images = excluded.images, period = excluded.period, "
                "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                (guild_id, images, period, now, actor_id),
            )
            await tx.execute(
                _AUDIT_INSERT,
                (
                    guild_id,
                    actor_id,
                    "set_default",
                    None,
                    old[0] if old else None,
                    old[1] if old else None,
                    images,
                    period,
                    now,
                ),
            )

        await self._db.write(work)

    async def clear_guild_default(self, guild_id: int, *, actor_id: int) -> bool:
        """Drop the guild default (the global default applies again). False if none."""
        now = to_db(self._clock())

        async def work(tx: Tx) -> bool:
            old = await tx.fetchone(
                "SELECT images, period FROM guild_limits WHERE guild_id = ?", (guild_id,)
            )
            if old is None:
                return False
            await tx.execute("DELETE FROM guild_limits WHERE guild_id = ?", (guild_id,))
            await tx.execute(
                _AUDIT_INSERT,
                (guild_id, actor_id, "clear_default", None, old[0], old[1], None, None, now),
            )
            return True

        return await self._db.write(work)

    async def effective(self, guild_id: int | None, user_id: int) -> EffectiveLimit:
        """The limit that applies to this user here, and where it comes from."""
        return await self._db.read(
            lambda tx: resolve_limit(
                tx, guild_id, user_id, owner_ids=self._owner_ids, default=self._default
            )
        )

    async def guild_default(self, guild_id: int | None) -> EffectiveLimit:
        """The limit for users without their own: the guild's default, else the global one."""

        async def work(tx: Tx) -> EffectiveLimit:
            if guild_id is not None:
                row = await tx.fetchone(
                    "SELECT images, period FROM guild_limits WHERE guild_id = ?", (guild_id,)
                )
                if row is not None:
                    return EffectiveLimit(row["images"], row["period"], "guild")
            return EffectiveLimit(self._default[0], self._default[1], "global")

        return await self._db.read(work)

    async def quota(self, guild_id: int | None, user_id: int) -> Quota:
        """What the user has used and has left in the current sliding period, and the next reset."""
        now = self._clock()

        async def work(tx: Tx) -> Quota:
            limit = await resolve_limit(
                tx, guild_id, user_id, owner_ids=self._owner_ids, default=self._default
            )
            return await window_quota(tx, guild_id, user_id, limit, now)

        return await self._db.read(work)

    async def list_user_limits(self, guild_id: int) -> list[UserLimit]:
        """Every per-user override in a guild, by user id."""
        rows = await self._db.read(
            lambda tx: tx.fetchall(
                "SELECT * FROM user_limits WHERE guild_id = ? ORDER BY user_id", (guild_id,)
            )
        )
        return [_user_limit_from_row(row) for row in rows]

    async def audit(self, guild_id: int, limit: int = 20) -> list[AuditEntry]:
        """The latest limit changes in a guild, newest first."""
        rows = await self._db.read(
            lambda tx: tx.fetchall(
                "SELECT * FROM limit_audit WHERE guild_id = ? ORDER BY at DESC, id DESC LIMIT ?",
                (guild_id, limit),
            )
        )
        return [_audit_from_row(row) for row in rows]
