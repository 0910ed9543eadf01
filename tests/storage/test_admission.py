"""Admission: atomic check-and-insert under concurrency, the pending cap, refusal details."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from storage import Storage
from tests.storage.conftest import FakeClock, make_job

GUILD, USER = 2001, 1001


async def count_rows(store: Storage) -> int:
    return await store.db.read(lambda tx: tx.scalar("SELECT COUNT(*) FROM jobs"))


async def test_200_concurrent_admissions_grant_exactly_the_limit(open_store: object) -> None:
    store = await open_store(default_limit=(5, "hour"), max_pending=1000)  # type: ignore[operator]
    results = await asyncio.gather(*(store.admit(make_job(seed=i)) for i in range(200)))
    assert sum(r.admitted for r in results) == 5
    assert Counter(r.reason for r in results if not r.admitted) == {"rate_limit": 195}
    assert await count_rows(store) == 5
    assert sorted(r.quota.used for r in results if r.admitted) == [1, 2, 3, 4, 5]


async def test_concurrent_admissions_through_two_connections_grant_exactly_the_limit(
    open_store: object,
) -> None:
    options = {"default_limit": (5, "hour"), "max_pending": 1000}
    first = await open_store(**options)  # type: ignore[operator]
    second = await open_store(**options)  # type: ignore[operator]
    assert first.db.connection is not second.db.connection
    results = await asyncio.gather(
        *((first if i % 2 else second).admit(make_job(seed=i)) for i in range(200))
    )
    assert sum(r.admitted for r in results) == 5
    assert await count_rows(first) == 5


async def test_concurrent_users_each_get_exactly_their_own_limit(open_store: object) -> None:
    store = await open_store(default_limit=(5, "day"), max_pending=1000)  # type: ignore[operator]
    results = await asyncio.gather(
        *(store.admit(make_job(user_id=u, seed=i)) for i in range(40) for u in (1, 2, 3))
    )
    granted = Counter(r.job.user_id for r in results if r.admitted)  # type: ignore[union-attr]
    assert granted == {1: 5, 2: 5, 3: 5}


async def test_pending_cap_refuses_with_reason_pending_until_a_job_finishes(
    open_store: object,
) -> None:
    store = await open_store(default_limit=(100, "day"), max_pending=2)  # type: ignore[operator]
    first = await store.admit(make_job())
    second = await store.admit(make_job())
    assert first.admitted
    assert second.admitted
    refused = await store.admit(make_job())
    assert (refused.admitted, refused.reason, refused.retry_at, refused.job) == (
        False,
        "pending",
        None,
        None,
    )
    assert refused.quota.used == 2
    await store.jobs.mark_done(first.job.id)  # type: ignore[union-attr]
    assert (await store.admit(make_job())).admitted


async def test_pending_cap_counts_jobs_in_every_guild(open_store: object) -> None:
    store = await open_store(max_pending=2)  # type: ignore[operator]
    assert (await store.admit(make_job(guild_id=1))).admitted
    assert (await store.admit(make_job(guild_id=2))).admitted
    assert (await store.admit(make_job(guild_id=3))).reason == "pending"


async def test_concurrent_admissions_respect_the_pending_cap(open_store: object) -> None:
    store = await open_store(default_limit=(100, "day"), max_pending=3)  # type: ignore[operator]
    results = await asyncio.gather(*(store.admit(make_job(seed=i)) for i in range(50)))
    assert sum(r.admitted for r in results) == 3
    assert {r.reason for r in results if not r.admitted} == {"pending"}


async def test_rate_limit_is_reported_before_the_pending_cap(open_store: object) -> None:
    store = await open_store(default_limit=(2, "day"), max_pending=2)  # type: ignore[operator]
    await store.admit(make_job())
    await store.admit(make_job())
    refused = await store.admit(make_job())
    assert refused.reason == "rate_limit"
    assert refused.retry_at is not None


async def test_a_refusal_writes_nothing(open_store: object) -> None:
    store = await open_store(default_limit=(1, "day"))  # type: ignore[operator]
    assert (await store.admit(make_job())).admitted
    for _ in range(3):
        assert not (await store.admit(make_job())).admitted
    assert await count_rows(store) == 1


async def test_cancelling_an_admit_midway_leaves_the_store_usable(open_store: object) -> None:
    store = await open_store(default_limit=(100, "day"), max_pending=100)  # type: ignore[operator]
    tasks = [asyncio.create_task(store.admit(make_job(seed=i))) for i in range(20)]
    await asyncio.sleep(0)
    for task in tasks[5:]:
        task.cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    admitted = [r for r in done if not isinstance(r, BaseException) and r.admitted]
    # Every admission that reported success is on disk, and nothing else is.
    assert await count_rows(store) >= len(admitted)
    after = await store.admit(make_job(seed=999))
    assert after.admitted
    rows = await count_rows(store)
    assert rows == len(await store.jobs.pending())


# --- quotas count pictures ----------------------------------------------------------------


async def test_a_job_of_four_pictures_uses_four_and_one_asking_more_than_remain_is_refused(
    open_store: object,
) -> None:
    store = await open_store(default_limit=(5, "hour"), max_pending=10)  # type: ignore[operator]
    four = await store.admit(make_job(images=4))
    assert four.admitted
    assert (four.quota.used, four.quota.remaining) == (4, 1)
    refused = await store.admit(make_job(images=2))
    assert (refused.admitted, refused.reason, refused.job) == (False, "rate_limit", None)
    assert (refused.quota.used, refused.quota.remaining) == (4, 1)  # "you have 1 left"
    assert await count_rows(store) == 1
    one = await store.admit(make_job(images=1))
    assert one.admitted
    assert (one.quota.used, one.quota.remaining) == (5, 0)


async def test_retry_at_is_when_enough_pictures_have_freed_for_the_job_refused(
    open_store: object, clock: FakeClock
) -> None:
    store = await open_store(default_limit=(5, "hour"), max_pending=10)  # type: ignore[operator]
    first_at = clock.now
    assert (await store.admit(make_job(images=2))).admitted
    second_at = clock.advance(minutes=10)
    assert (await store.admit(make_job(images=2))).admitted
    clock.advance(minutes=10)
    # 4 used, 1 left. Three pictures need the first job (2) to expire ...
    three = await store.admit(make_job(images=3))
    assert three.reason == "rate_limit"
    assert three.retry_at == first_at + timedelta(hours=1)
    # ... four need both.
    four = await store.admit(make_job(images=4))
    assert four.retry_at == second_at + timedelta(hours=1)
    clock.now = second_at + timedelta(hours=1)
    assert (await store.admit(make_job(images=4))).admitted


async def test_a_job_asking_more_pictures_than_the_limit_is_refused_with_no_retry_time(
    open_store: object,
) -> None:
    store = await open_store(default_limit=(3, "day"))  # type: ignore[operator]
    refused = await store.admit(make_job(images=4))
    assert (refused.reason, refused.retry_at) == ("rate_limit", None)
    assert (refused.quota.remaining, refused.quota.limit) == (3, 3)
    assert await count_rows(store) == 0


async def test_the_pending_cap_counts_jobs_not_pictures(open_store: object) -> None:
    store = await open_store(default_limit=(100, "day"), max_pending=2)  # type: ignore[operator]
    assert (await store.admit(make_job(images=4))).admitted
    second = await store.admit(make_job(images=4))
    assert second.admitted
    assert second.quota.used == 8
    assert (await store.admit(make_job(images=1))).reason == "pending"


async def test_concurrent_admissions_of_several_pictures_never_exceed_the_limit(
    open_store: object,
) -> None:
    store = await open_store(default_limit=(9, "hour"), max_pending=1000)  # type: ignore[operator]
    results = await asyncio.gather(*(store.admit(make_job(images=2, seed=i)) for i in range(100)))
    assert sum(r.admitted for r in results) == 4
    assert {r.quota.remaining for r in results if not r.admitted} == {1}
    quota = await store.limits.quota(GUILD, USER)
    assert (quota.used, quota.remaining) == (8, 1)


async def test_a_cancelled_job_gives_its_pictures_back_whether_queued_or_running(
    open_store: object,
) -> None:
    store = await open_store(default_limit=(3, "day"))  # type: ignore[operator]
    queued = await store.admit(make_job(images=3))
    assert queued.admitted
    assert (await store.admit(make_job(images=3))).reason == "rate_limit"
    await store.jobs.mark_cancelled(queued.job.id, by=USER)  # type: ignore[union-attr]
    running = await store.admit(make_job(images=3))
    assert running.admitted
    await store.jobs.mark_running(running.job.id)  # type: ignore[union-attr]
    await store.jobs.mark_cancelled(running.job.id, by=99)  # type: ignore[union-attr]
    quota = await store.limits.quota(GUILD, USER)
    assert (quota.used, quota.remaining) == (0, 3)
    assert (await store.admit(make_job(images=3))).admitted
