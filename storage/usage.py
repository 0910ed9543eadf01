"""Usage statistics for `/stats` and `/usage`, read from the jobs table (one row per generation).

Images are pictures: a done job of four pictures (`jobs.images`) is four images. Job counts
(`UsageTotals.jobs`, `done`, ...) stay counts of rows. Windows are whole UTC days: "the last N days" is today and the N-1 days before it, so the
chart's bars and the totals agree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from storage.database import Database, Tx
from storage.timeutil import Clock, to_db
from storage.types import UsageTotals

# The longest window a query may cover: it bounds the rows built for a per-day series.
MAX_WINDOW_DAYS = 366


def _check_days(days: int) -> None:
    # The isinstance checks guard against callers that ignore the annotations (CLI, tests).
    if (
        isinstance(days, bool)
        or not isinstance(days, int)  # pyright: ignore[reportUnnecessaryIsInstance]
        or not 1 <= days <= MAX_WINDOW_DAYS
    ):
        raise ValueError(f"days must be a whole number from 1 to {MAX_WINDOW_DAYS}, not {days!r}")


class UsageRepository:
    """Per-guild counts of images and users."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def _window(self, days: int) -> tuple[date, float]:
        _check_days(days)
        first = self._clock().astimezone(UTC).date() - timedelta(days=days - 1)
        start = to_db(datetime.combine(first, time(), UTC))
        assert start is not None
        return first, start

    async def images_per_day(self, guild_id: int, days: int) -> list[tuple[date, int]]:
        """Pictures made (by done jobs) per UTC day, oldest first, every day present (0 when idle)."""
        first, start = self._window(days)
        rows = await self._db.read(
            lambda tx: tx.fetchall(
                "SELECT date(created_at, 'unixepoch') AS day, SUM(images) AS n FROM jobs "
                "WHERE guild_id = ? AND created_at >= ? AND state = 'done' GROUP BY day",
                (guild_id, start),
            )
        )
        counts = {date.fromisoformat(row["day"]): row["n"] for row in rows}
        return [
            (day, counts.get(day, 0)) for day in (first + timedelta(days=i) for i in range(days))
        ]

    async def user_images(self, guild_id: int | None, user_id: int, days: int = 1) -> int:
        """Pictures one user made (done jobs) in a guild over the last `days` UTC days; 1 = today."""
        _, start = self._window(days)
        row = await self._db.read(
            lambda tx: tx.fetchone(
                "SELECT COALESCE(SUM(images), 0) AS n FROM jobs WHERE guild_id IS ? AND user_id = ? "
                "AND created_at >= ? AND state = 'done'",
                (guild_id, user_id, start),
            )
        )
        return row["n"] if row is not None else 0

    async def top_users(self, guild_id: int, days: int, limit: int = 10) -> list[tuple[int, int]]:
        """(user id, pictures) for the busiest users, most pictures first (ties by user id)."""
        _, start = self._window(days)
        rows = await self._db.read(
            lambda tx: tx.fetchall(
                "SELECT user_id, SUM(images) AS n FROM jobs "
                "WHERE guild_id = ? AND created_at >= ? AND state = 'done' "
                "GROUP BY user_id ORDER BY n DESC, user_id LIMIT ?",
                (guild_id, start, limit),
            )
        )
        return [(row["user_id"], row["n"]) for row in rows]

    async def totals(self, guild_id: int, days: int) -> UsageTotals:
        """Jobs by outcome, pictures made, distinct users and the mean run time of done jobs."""
        _, start = self._window(days)

        async def work(tx: Tx) -> UsageTotals:
            row = await tx.fetchone(
                "SELECT COUNT(*) AS jobs, "
                "COALESCE(SUM(CASE WHEN state = 'done' THEN images END), 0) AS images, "
                "COALESCE(SUM(state = 'done'), 0) AS done, "
                "COALESCE(SUM(state = 'failed'), 0) AS failed, "
                "COALESCE(SUM(state = 'cancelled'), 0) AS cancelled, "
                "COALESCE(SUM(state IN ('queued', 'running')), 0) AS pending, "
                "COUNT(DISTINCT user_id) AS users, "
                "AVG(CASE WHEN state = 'done' AND started_at IS NOT NULL "
                "THEN finished_at - started_at END) AS avg_run "
                "FROM jobs WHERE guild_id = ? AND created_at >= ?",
                (guild_id, start),
            )
            assert row is not None
            return UsageTotals(
                jobs=row["jobs"],
                images=row["images"],
                done=row["done"],
                failed=row["failed"],
                cancelled=row["cancelled"],
                pending=row["pending"],
                users=row["users"],
                avg_run_seconds=row["avg_run"],
            )

        return await self._db.read(work)
