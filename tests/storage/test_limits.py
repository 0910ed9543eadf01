"""Rate limits: three levels of precedence, owners, blocking, sliding-window boundaries, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage import Storage
from tests.storage.conftest import FakeClock, make_job

GUILD, USER, ADMIN, OWNER = 2001, 1001, 5, 9


async def test_global_default_applies_without_any_override(store: Storage) -> None:
    limit = await store.limits.effective(GUILD, USER)
    assert (limit.images, limit.period, limit.source) == (20, "day", "global")


async def test_guild_default_overrides_the_global_default(store: Storage) -> None:
    await store.limits.set_guild_default(GUILD, 4, "hour", actor_id=ADMIN)
    limit = await store.limits.effective(GUILD, USER)
    assert (limit.images, limit.period, limit.source) == (4, "hour", "guild")
    other_guild = await store.limits.effective(GUILD + 1, USER)
    assert other_guild.source == "global"


async def test_user_limit_overrides_the_guild_default_in_its_guild_only(store: Storage) -> None:
    await store.limits.set_guild_default(GUILD, 4, "hour", actor_id=ADMIN)
    await store.limits.set_user(GUILD, USER, 50, "day", actor_id=ADMIN)
    limit = await store.limits.effective(GUILD, USER)
    assert (limit.images, limit.period, limit.source) == (50, "day", "user")
    assert (await store.limits.effective(GUILD, USER + 1)).source == "guild"
    assert (await store.limits.effective(GUILD + 1, USER)).source == "global"


async def test_clearing_a_user_limit_falls_back_to_the_guild_default(store: Storage) -> None:
    await store.limits.set_guild_default(GUILD, 4, "hour", actor_id=ADMIN)
    await store.limits.set_user(GUILD, USER, 50, "day", actor_id=ADMIN)
    assert await store.limits.clear_user(GUILD, USER, actor_id=ADMIN)
    assert (await store.limits.effective(GUILD, USER)).source == "guild"
    assert not await store.limits.clear_user(GUILD, USER, actor_id=ADMIN)
    assert await store.limits.clear_guild_default(GUILD, actor_id=ADMIN)
    assert (await store.limits.effective(GUILD, USER)).source == "global"


async def test_direct_messages_use_the_global_default(store: Storage) -> None:
    limit = await store.limits.effective(None, USER)
    assert limit.source == "global"


async def test_zero_blocks_the_user_with_reason_blocked(store: Storage) -> None:
    await store.limits.set_user(GUILD, USER, 0, "day", actor_id=ADMIN)
    admission = await store.admit(make_job())
    assert not admission.admitted
    assert admission.reason == "blocked"
    assert admission.retry_at is None
    assert (admission.quota.limit, admission.quota.remaining) == (0, 0)
    assert await store.jobs.pending() == []


async def test_owner_bypasses_block_rate_limit_and_pending_cap(open_store: object) -> None:
    store = await open_store(owner_ids={OWNER}, default_limit=(1, "day"), max_pending=1)  # type: ignore[operator]
    await store.limits.set_user(GUILD, OWNER, 0, "day", actor_id=ADMIN)
    limit = await store.limits.effective(GUILD, OWNER)
    assert (limit.images, limit.source) == (None, "owner")
    for _ in range(5):
        admission = await store.admit(make_job(user_id=OWNER))
        assert admission.admitted
        assert (admission.quota.limit, admission.quota.remaining) == (None, None)
        assert admission.quota.source == "owner"
    assert len(await store.jobs.pending()) == 5


@pytest.mark.parametrize(
    ("period", "length"), [("hour", timedelta(hours=1)), ("day", timedelta(days=1))]
)
async def test_exactly_n_images_per_period_then_refused_until_the_oldest_expires(
    open_store: object, clock: FakeClock, period: str, length: timedelta
) -> None:
    store = await open_store(default_limit=(3, period), max_pending=100)  # type: ignore[operator]
    first_at = clock.now
    for i in range(3):
        admission = await store.admit(make_job())
        assert admission.admitted, i
        assert admission.quota.remaining == 2 - i
        clock.advance(minutes=1)
    refused = await store.admit(make_job())
    assert (refused.admitted, refused.reason) == (False, "rate_limit")
    assert refused.retry_at == first_at + length
    assert refused.quota.reset_at == first_at + length

    clock.now = first_at + length - timedelta(microseconds=1)
    assert (await store.admit(make_job())).reason == "rate_limit"

    clock.now = first_at + length  # the oldest job leaves the sliding window exactly now
    roll_over = await store.admit(make_job())
    assert roll_over.admitted
    assert roll_over.quota.used == 3
    assert (await store.admit(make_job())).reason == "rate_limit"


async def test_retry_at_after_lowering_a_limit_waits_for_enough_jobs_to_expire(
    open_store: object, clock: FakeClock
) -> None:
    store = await open_store(default_limit=(10, "hour"), max_pending=100)  # type: ignore[operator]
    times = []
    for _ in range(5):
        times.append(clock.now)
        assert (await store.admit(make_job())).admitted
        clock.advance(minutes=1)
    await store.limits.set_user(GUILD, USER, 2, "hour", actor_id=ADMIN)
    refused = await store.admit(make_job())
    # 5 used, limit 2: three must expire before one is free, so the 4th oldest decides.
    assert refused.retry_at == times[3] + timedelta(hours=1)
    clock.now = times[3] + timedelta(hours=1)
    assert (await store.admit(make_job())).admitted


async def test_refunded_jobs_do_not_count_and_charged_ones_do(
    open_store: object,
) -> None:
    store = await open_store(default_limit=(10, "day"), max_pending=100)  # type: ignore[operator]

    async def new() -> int:
        admission = await store.admit(make_job())
        assert admission.admitted
        return admission.job.id  # type: ignore[union-attr]

    # Not counted: our failure, rejected input, cancelled while queued or while running.
    await store.jobs.mark_failed(await new(), "out_of_memory", fault="ours")
    await store.jobs.mark_failed(await new(), "bad_prompt", fault="rejected")
    await store.jobs.mark_cancelled(await new())
    started = await new()
    await store.jobs.mark_running(started)
    await store.jobs.mark_cancelled(started, by=USER)
    # Delivered worse than asked through our fault (English drawn untranslated).
    await store.jobs.mark_done(await new(), refund=True)
    # Counted: the user's fault, done.
    await store.jobs.mark_failed(await new(), "nsfw", fault="user")
    await store.jobs.mark_done(await new())
    quota = await store.limits.quota(GUILD, USER)
    assert (quota.used, quota.remaining) == (2, 8)


async def test_quota_reports_used_remaining_and_next_reset(
    store: Storage, clock: FakeClock
) -> None:
    empty = await store.limits.quota(GUILD, USER)
    assert (empty.limit, empty.used, empty.remaining, empty.reset_at) == (20, 0, 20, None)
    first_at = clock.now
    await store.admit(make_job())
    clock.advance(hours=2)
    await store.admit(make_job(guild_id=GUILD + 1))  # other guilds keep their own count
    quota = await store.limits.quota(GUILD, USER)
    assert (quota.used, quota.remaining, quota.source) == (1, 19, "global")
    assert quota.reset_at == first_at + timedelta(days=1)


async def test_every_limit_change_is_audited_with_actor_time_old_and_new(
    store: Storage, clock: FakeClock
) -> None:
    t1 = clock.now
    await store.limits.set_user(GUILD, USER, 5, "day", actor_id=ADMIN)
    t2 = clock.advance(minutes=1)
    await store.limits.set_user(GUILD, USER, 2, "hour", actor_id=ADMIN + 1)
    t3 = clock.advance(minutes=1)
    await store.limits.clear_user(GUILD, USER, actor_id=ADMIN)
    t4 = clock.advance(minutes=1)
    await store.limits.set_guild_default(GUILD, 7, "day", actor_id=ADMIN)
    await store.limits.set_guild_default(GUILD + 1, 1, "day", actor_id=ADMIN)
    entries = await store.limits.audit(GUILD)
    summary = [
        (e.action, e.actor_id, e.target_user_id, e.old_images, e.old_period, e.new_images,
         e.new_period, e.at)
        for e in entries
    ]  # fmt: skip
    assert summary == [
        ("set_default", ADMIN, None, None, None, 7, "day", t4),
        ("clear_user", ADMIN, USER, 2, "hour", None, None, t3),
        ("set_user", ADMIN + 1, USER, 5, "day", 2, "hour", t2),
        ("set_user", ADMIN, USER, None, None, 5, "day", t1),
    ]
    assert len(await store.limits.audit(GUILD, limit=2)) == 2


async def test_list_user_limits_shows_every_override_in_the_guild(store: Storage) -> None:
    await store.limits.set_user(GUILD, 3, 1, "hour", actor_id=ADMIN)
    await store.limits.set_user(GUILD, 2, 0, "day", actor_id=ADMIN)
    await store.limits.set_user(GUILD + 1, 4, 9, "day", actor_id=ADMIN)
    listed = await store.limits.list_user_limits(GUILD)
    assert [(u.user_id, u.images, u.period, u.updated_by) for u in listed] == [
        (2, 0, "day", ADMIN),
        (3, 1, "hour", ADMIN),
    ]


@pytest.mark.parametrize(
    ("images", "period", "message"),
    [(-1, "day", "images must be"), (2.5, "day", "images must be"), (3, "week", "period must be")],
)
async def test_bad_limits_are_refused_with_a_clear_value_error(
    store: Storage, images: object, period: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await store.limits.set_user(GUILD, USER, images, period, actor_id=ADMIN)  # type: ignore[arg-type]
    assert await store.limits.audit(GUILD) == []


async def test_bad_global_default_is_refused_at_open(open_store: object) -> None:
    with pytest.raises(ValueError, match="period must be"):
        await open_store(default_limit=(5, "month"))  # type: ignore[operator]
