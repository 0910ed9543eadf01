"""Usage statistics per guild: images per UTC day, top users, totals."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from storage import Storage
from storage.usage import MAX_WINDOW_DAYS
from tests.storage.conftest import FakeClock, make_job

GUILD = 2001


async def make(store: Storage, *, user: int = 1, guild: int = GUILD, outcome: str = "done") -> None:
    admission = await store.admit(make_job(user_id=user, guild_id=guild))
    assert admission.admitted
    job_id = admission.job.id  # type: ignore[union-attr]
    await store.jobs.mark_running(job_id)
    if outcome == "done":
        await store.jobs.mark_done(job_id)
    elif outcome == "failed":
        await store.jobs.mark_failed(job_id, "bad_image", fault="ours")
    elif outcome == "cancelled":
        await store.jobs.mark_cancelled(job_id)


@pytest.fixture
async def busy_store(open_store: object, clock: FakeClock) -> Storage:
    store = await open_store(default_limit=(1000, "day"), max_pending=1000)  # type: ignore[operator]
    clock.now = datetime(2025, 3, 1, 23, 59, tzinfo=UTC)
    await make(store, user=1)  # 1 March
    clock.now = datetime(2025, 3, 2, 0, 1, tzinfo=UTC)
    await make(store, user=1)  # 2 March
    await make(store, user=2)
    await make(store, user=2, outcome="failed")
    await make(store, user=3, guild=GUILD + 1)  # another guild
    clock.now = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
    await make(store, user=2)
    await make(store, user=2)
    await make(store, user=3, outcome="cancelled")
    return store


async def test_images_per_day_has_every_utc_day_oldest_first_counting_done_jobs(
    busy_store: Storage,
) -> None:
    per_day = await busy_store.usage.images_per_day(GUILD, 4)
    assert per_day == [
        (date(2025, 3, 1), 1),
        (date(2025, 3, 2), 2),
        (date(2025, 3, 3), 0),
        (date(2025, 3, 4), 2),
    ]
    assert await busy_store.usage.images_per_day(GUILD, 1) == [(date(2025, 3, 4), 2)]


async def test_user_images_counts_one_users_done_jobs_today_in_that_guild(
    busy_store: Storage,
) -> None:
    # 4 March: user 2 made two images; user 3's job was cancelled and user 1 made none.
    assert await busy_store.usage.user_images(GUILD, 2) == 2
    assert await busy_store.usage.user_images(GUILD, 3) == 0
    assert await busy_store.usage.user_images(GUILD, 1) == 0
    # Over three days user 2 has three done images (the failed one does not count) ...
    assert await busy_store.usage.user_images(GUILD, 2, days=3) == 3
    # ... and user 3's image on 2 March was in another guild.
    assert await busy_store.usage.user_images(GUILD + 1, 3, days=3) == 1


async def test_top_users_are_ordered_by_images_then_id_and_limited(busy_store: Storage) -> None:
    assert await busy_store.usage.top_users(GUILD, 7) == [(2, 3), (1, 2)]
    assert await busy_store.usage.top_users(GUILD, 7, limit=1) == [(2, 3)]
    assert await busy_store.usage.top_users(GUILD, 2) == [(2, 2)]


async def test_totals_count_jobs_by_outcome_and_distinct_users(busy_store: Storage) -> None:
    totals = await busy_store.usage.totals(GUILD, 7)
    assert (totals.jobs, totals.done, totals.failed, totals.cancelled, totals.pending) == (
        7,
        5,
        1,
        1,
        0,
    )
    assert totals.images == 5
    assert totals.users == 3
    assert totals.avg_run_seconds == 0.0


@pytest.mark.parametrize("days", [0, -1, MAX_WINDOW_DAYS + 1, 100_000, True])
async def test_days_outside_one_to_the_window_is_a_value_error(store: Storage, days: int) -> None:
    """Zero makes no window; 100 000 days would build 100 000 rows for one chart."""
    with pytest.raises(ValueError, match="days must be"):
        await store.usage.images_per_day(GUILD, days)


async def test_usage_counts_the_pictures_of_done_jobs(open_store: object, clock: FakeClock) -> None:
    store = await open_store(default_limit=(100, "day"), max_pending=100)  # type: ignore[operator]
    clock.now = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
    for user, images, outcome in [(1, 4, "done"), (2, 3, "done"), (2, 1, "done"), (1, 2, "failed")]:
        admission = await store.admit(make_job(user_id=user, images=images))
        job_id = admission.job.id  # type: ignore[union-attr]
        if outcome == "done":
            await store.jobs.mark_done(job_id)
        else:
            await store.jobs.mark_failed(job_id, "bad_image", fault="ours")
    assert await store.usage.images_per_day(GUILD, 1) == [(date(2025, 3, 4), 8)]
    assert await store.usage.user_images(GUILD, 1) == 4
    assert await store.usage.top_users(GUILD, 1) == [(1, 4), (2, 4)]
    totals = await store.usage.totals(GUILD, 1)
    assert (totals.jobs, totals.done, totals.failed, totals.images) == (4, 3, 1, 8)


async def test_the_longest_window_is_accepted(store: Storage) -> None:
    assert len(await store.usage.images_per_day(GUILD, MAX_WINDOW_DAYS)) == MAX_WINDOW_DAYS
