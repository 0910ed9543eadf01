"""Each user's own /pokemon defaults, the one-time notices, and /history's query."""

from __future__ import annotations

import pytest

from storage import Storage, StorageError, UserDefaults
from tests.storage.conftest import FakeClock, make_job

GUILD, OTHER_GUILD, USER, OTHER = 2001, 2002, 1001, 1002


async def test_a_user_without_defaults_reads_all_none(store: Storage) -> None:
    assert await store.user_settings.get(USER) == UserDefaults()


async def test_saved_defaults_read_back_and_belong_to_that_user_only(store: Storage) -> None:
    mine = UserDefaults(size="portrait", count=3, translate=False, negative="ぼやけた")
    await store.user_settings.save(USER, mine)

    assert await store.user_settings.get(USER) == mine
    assert await store.user_settings.get(OTHER) == UserDefaults()


async def test_saving_again_replaces_the_whole_set(store: Storage) -> None:
    await store.user_settings.save(USER, UserDefaults(size="portrait", count=3))
    await store.user_settings.save(USER, UserDefaults(count=2))

    assert await store.user_settings.get(USER) == UserDefaults(count=2)


async def test_reset_forgets_the_defaults_and_says_whether_there_were_any(store: Storage) -> None:
    await store.user_settings.save(USER, UserDefaults(translate=True))

    assert await store.user_settings.reset(USER)
    assert await store.user_settings.get(USER) == UserDefaults()
    assert not await store.user_settings.reset(USER)


async def test_an_empty_set_removes_the_row(store: Storage) -> None:
    await store.user_settings.save(USER, UserDefaults(size="landscape"))
    await store.user_settings.save(USER, UserDefaults())

    rows = await store.db.read(lambda tx: tx.scalar("SELECT count(*) FROM user_settings"))
    assert rows == 0


@pytest.mark.parametrize(
    "defaults",
    [
        UserDefaults(size="huge"),
        UserDefaults(count=0),
        UserDefaults(count=5),
        UserDefaults(count=True),
        UserDefaults(negative="x" * 1001),
    ],
)
async def test_values_outside_what_is_kept_are_refused(
    store: Storage, defaults: UserDefaults
) -> None:
    with pytest.raises(ValueError):
        await store.user_settings.save(USER, defaults)
    assert await store.user_settings.get(USER) == UserDefaults()


async def test_the_schema_refuses_what_the_repository_would_not_write(store: Storage) -> None:
    # The CHECKs stand on their own: another process writing the file directly is held too.
    with pytest.raises(StorageError):
        await store.db.write(
            lambda tx: tx.execute(
                "INSERT INTO user_settings (user_id, count, updated_at) VALUES (?, 9, 0)",
                (USER,),
            )
        )


async def test_a_notice_is_first_shown_once_per_user_and_server(store: Storage) -> None:
    settings = store.user_settings
    assert not await settings.seen(USER, GUILD, "about")
    assert await settings.first_time(USER, GUILD, "about")
    assert await settings.seen(USER, GUILD, "about")
    assert not await settings.seen(USER, OTHER_GUILD, "about")
    assert not await settings.first_time(USER, GUILD, "about")
    assert await settings.first_time(USER, OTHER_GUILD, "about")
    assert await settings.first_time(OTHER, GUILD, "about")


async def test_forgetting_a_user_deletes_their_defaults_and_notices_only(store: Storage) -> None:
    await store.user_settings.save(USER, UserDefaults(negative="ぼやけた"))
    await store.user_settings.save(OTHER, UserDefaults(count=2))
    await store.user_settings.first_time(USER, GUILD, "about")
    await store.user_settings.first_time(OTHER, GUILD, "about")

    await store.privacy.forget_user(USER)

    assert await store.user_settings.get(USER) == UserDefaults()
    assert await store.user_settings.get(OTHER) == UserDefaults(count=2)
    assert await store.user_settings.first_time(USER, GUILD, "about")
    assert not await store.user_settings.first_time(OTHER, GUILD, "about")


async def _delivered(store: Storage, clock: FakeClock, message_id: int, **changes: object) -> int:
    admission = await store.admit(make_job(**changes))
    assert admission.job is not None
    await store.jobs.mark_done(admission.job.id, result_message_id=message_id)
    clock.advance(minutes=1)
    return admission.job.id


async def test_history_lists_the_users_delivered_pictures_in_that_server_newest_first(
    open_store: object, clock: FakeClock
) -> None:
    store: Storage = await open_store(default_limit=(100, "day"), max_pending=100)  # type: ignore[operator]
    first = await _delivered(store, clock, 501)
    second = await _delivered(store, clock, 502)
    await _delivered(store, clock, 503, user_id=OTHER)  # someone else's
    await _delivered(store, clock, 504, guild_id=OTHER_GUILD)  # another server
    failed = await store.admit(make_job())
    assert failed.job is not None
    await store.jobs.mark_failed(failed.job.id, "internal", fault="ours")
    await store.admit(make_job())  # still queued: no picture yet

    history = await store.jobs.history(USER, GUILD)

    assert [job.id for job in history] == [second, first]
    assert [job.result_message_id for job in history] == [502, 501]


async def test_history_pages_with_limit_and_offset(open_store: object, clock: FakeClock) -> None:
    store: Storage = await open_store(default_limit=(100, "day"), max_pending=100)  # type: ignore[operator]
    ids = [await _delivered(store, clock, 600 + n) for n in range(5)]

    pages = [await store.jobs.history(USER, GUILD, limit=2, offset=n) for n in (0, 2, 4)]

    assert [[job.id for job in page] for page in pages] == [ids[4:2:-1], ids[2:0:-1], ids[:1]]
