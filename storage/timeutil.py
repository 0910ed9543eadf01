"""UTC times: stored as REAL unix seconds, handed out as timezone-aware UTC datetimes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]

PERIODS: dict[str, timedelta] = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


def system_clock() -> datetime:
    """The wall clock, aware UTC."""
    return datetime.now(UTC)


def to_db(value: datetime | None) -> float | None:
    """Aware datetime → unix seconds. Naive datetimes are refused: their zone is a guess."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware UTC time")
    return value.timestamp()


def from_db(value: float | None) -> datetime | None:
    """Unix seconds → aware UTC datetime (None stays None)."""
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC)


def period_delta(period: str) -> timedelta:
    """`hour` or `day` → its length; anything else is a ValueError naming the choices."""
    try:
        return PERIODS[period]
    except KeyError:
        raise ValueError(f"period must be 'hour' or 'day', not {period!r}") from None
