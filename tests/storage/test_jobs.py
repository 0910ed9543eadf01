"""The jobs table: rows written by admission, state changes, lookups, restart recovery."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from storage import JSON, JobRecord, Storage, StorageError
from tests.storage.conftest import BASE_JOB, BASE_REQUEST, FakeClock, make_job


async def admit_one(store: Storage, **changes: object) -> JobRecord:
    admission = await store.admit(make_job(**changes))
    assert admission.admitted, admission
    assert admission.job is not None
    return admission.job


async def test_admitted_job_row_holds_every_field_of_the_request(
    store: Storage, clock: FakeClock
) -> None:
    expires = clock.now + timedelta(minutes=15)
    job = await admit_one(store, interaction_expires_at=expires, reply_to_message_id=77)
    stored = await store.jobs.get(job.id)
    assert stored == job
    for field in dataclasses.fields(BASE_JOB):
        if field.name not in {"interaction_expires_at", "reply_to_message_id"}:
            assert getattr(stored, field.name) == getattr(BASE_JOB, field.name), field.name
    assert stored.interaction_expires_at == expires
    assert stored.reply_to_message_id == 77
    assert (stored.images, stored.outcome, stored.cancelled_by) == (1, None, None)
    assert stored.state == "queued"
    assert stored.created_at == clock.now
    assert stored.created_at.tzinfo is UTC
    assert (stored.started_at, stored.finished_at, stored.error_code, stored.fault) == (
        None,
        None,
        None,
        None,
    )


async def test_get_unknown_job_returns_none(store: Storage) -> None:
    assert await store.jobs.get(12345) is None


async def test_running_then_done_records_start_finish_and_result_message(
    store: Storage, clock: FakeClock
) -> None:
    job = await admit_one(store)
    started = clock.advance(seconds=3)
    assert await store.jobs.mark_running(job.id)
    finished = clock.advance(seconds=10)
    assert await store.jobs.mark_done(job.id, result_message_id=555)
    done = await store.jobs.get(job.id)
    assert done is not None
    assert (done.state, done.started_at, done.finished_at) == ("done", started, finished)
    assert done.result_message_id == 555
    assert done.run_seconds == 10


async def test_failed_job_records_error_code_and_fault(store: Storage) -> None:
    job = await admit_one(store)
    assert await store.jobs.mark_failed(job.id, "nsfw", fault="user")
    failed = await store.jobs.get(job.id)
    assert failed is not None
    assert (failed.state, failed.error_code, failed.fault) == ("failed", "nsfw", "user")
    assert failed.finished_at is not None


async def test_mark_failed_with_unknown_fault_is_a_value_error(store: Storage) -> None:
    job = await admit_one(store)
    with pytest.raises(ValueError, match="fault must be one of"):
        await store.jobs.mark_failed(job.id, "oops", fault="nobody")
    assert (await store.jobs.get(job.id)).state == "queued"  # type: ignore[union-attr]


async def test_finished_job_never_changes_state_again(store: Storage) -> None:
    job = await admit_one(store)
    assert await store.jobs.mark_done(job.id)
    assert not await store.jobs.mark_cancelled(job.id)
    assert not await store.jobs.mark_failed(job.id, "timeout", fault="ours")
    assert not await store.jobs.mark_running(job.id)
    assert (await store.jobs.get(job.id)).state == "done"  # type: ignore[union-attr]


async def test_set_message_changes_only_the_ids_given(store: Storage) -> None:
    job = await admit_one(store)
    assert await store.jobs.set_message(job.id, progress_message_id=10)
    assert await store.jobs.set_message(job.id, result_message_id=20)
    got = await store.jobs.get(job.id)
    assert (got.progress_message_id, got.result_message_id) == (10, 20)  # type: ignore[union-attr]
    assert not await store.jobs.set_message(999, progress_message_id=1)


@pytest.mark.parametrize("kind", ["result", "progress"])
async def test_by_message_finds_the_job_the_message_shows_and_none_for_others(
    store: Storage, kind: str
) -> None:
    # by_result_message for 🔁 and the result buttons, by_progress_message for ✖ cancel.
    job = await admit_one(store)
    await store.jobs.set_message(job.id, **{f"{kind}_message_id": 8888})
    lookup = getattr(store.jobs, f"by_{kind}_message")
    found = await lookup(8888)
    assert found is not None
    assert found.id == job.id
    assert await lookup(8889) is None


async def test_pending_lists_queued_and_running_jobs_oldest_first(
    open_store: object, clock: FakeClock
) -> None:
    store = await open_store(max_pending=10)  # type: ignore[operator]
    first = await admit_one(store)
    clock.advance(seconds=1)
    second = await admit_one(store, user_id=2)
    clock.advance(seconds=1)
    third = await admit_one(store, user_id=3)
    clock.advance(seconds=1)
    finished = await admit_one(store, user_id=4)
    await store.jobs.mark_running(second.id)
    await store.jobs.mark_done(finished.id)
    pending = await store.jobs.pending()
    assert [j.id for j in pending] == [first.id, second.id, third.id]
    assert [j.state for j in pending] == ["queued", "running", "queued"]


async def test_job_written_before_a_crash_is_pending_after_reopening(
    open_store: object, db_path: object, clock: FakeClock
) -> None:
    store = await open_store()  # type: ignore[operator]
    queued = await admit_one(store)
    running = await admit_one(store, user_id=2, reply_to_message_id=31)
    await store.jobs.mark_running(running.id)
    # The process dies: nothing is marked done; the connection just goes away.
    await store.close()

    reopened = await open_store()  # type: ignore[operator]
    pending = await reopened.jobs.pending()
    assert [(j.id, j.state) for j in pending] == [(queued.id, "queued"), (running.id, "running")]
    assert pending[1].reply_to_message_id == 31
    assert pending[0].request == BASE_JOB.request


async def test_find_pending_matches_user_and_parent_only_while_unfinished(
    open_store: object,
) -> None:
    store = await open_store(max_pending=10)  # type: ignore[operator]
    parent = await admit_one(store)
    await store.jobs.mark_done(parent.id, result_message_id=1)
    regen = await admit_one(store, user_id=5, parent_job_id=parent.id)
    assert (await store.jobs.find_pending(5, parent_job_id=parent.id)).id == regen.id  # type: ignore[union-attr]
    assert await store.jobs.find_pending(6, parent_job_id=parent.id) is None
    assert await store.jobs.find_pending(5, parent_job_id=None) is None
    await store.jobs.mark_done(regen.id)
    assert await store.jobs.find_pending(5, parent_job_id=parent.id) is None


async def test_recent_for_user_is_newest_first_limited_and_filtered_by_guild(
    open_store: object, clock: FakeClock
) -> None:
    store = await open_store(max_pending=10, default_limit=(100, "day"))  # type: ignore[operator]
    ids = []
    for guild in (1, 2, 1, 2, 1):
        ids.append((await admit_one(store, guild_id=guild)).id)
        clock.advance(seconds=1)
    await admit_one(store, user_id=99)
    recent = await store.jobs.recent_for_user(BASE_JOB.user_id, limit=3)
    assert [j.id for j in recent] == ids[::-1][:3]
    in_guild_1 = await store.jobs.recent_for_user(BASE_JOB.user_id, guild_id=1)
    assert [j.id for j in in_guild_1] == [ids[4], ids[2], ids[0]]


async def test_parent_job_must_exist(store: Storage) -> None:
    with pytest.raises(StorageError, match="constraint") as caught:
        await store.admit(make_job(parent_job_id=424242))
    assert caught.value.code == "constraint"
    assert await store.jobs.pending() == []


@pytest.mark.parametrize("seed", [2**64 - 1, 2**32, -1, True, 1.5, "42"])
async def test_seed_outside_0_to_2_32_minus_1_is_a_value_error(
    store: Storage, seed: object
) -> None:
    with pytest.raises(ValueError, match=r"request\['seed'\] must be a whole number from 0 to"):
        await store.admit(make_job(seed=seed))
    assert await store.jobs.pending() == []


async def test_the_largest_seed_and_a_request_without_one_are_stored(store: Storage) -> None:
    largest = await admit_one(store, seed=2**32 - 1)
    assert (await store.jobs.get(largest.id)).request["seed"] == 2**32 - 1  # type: ignore[union-attr]
    seedless = await admit_one(store, request={"prompt": "ランダム"}, user_id=2)
    assert (await store.jobs.get(seedless.id)).request == {"prompt": "ランダム"}  # type: ignore[union-attr]


async def test_direct_message_jobs_have_no_guild(store: Storage) -> None:
    job = await admit_one(store, guild_id=None)
    assert (await store.jobs.get(job.id)).guild_id is None  # type: ignore[union-attr]


# --- the request as one JSON object ----------------------------------------------------------

FUTURE_REQUEST: dict[str, JSON] = {
    "prompt": 'ほのおの "ドラゴン" 🐉\n\\',
    "negative_prompt": "",
    "seed": 7,
    "steps": 30,
    "guidance": 1.0,
    "width": 768,
    "height": 512,
    "scheduler": "lms",
    "translate": "auto",
    "strength": 0.35,
    "count": 4,
    "nested": {"list": [1, 2.5, None, True, False, "テキスト"], "empty": {}},
}


async def test_a_request_round_trips_with_every_json_type_and_keys_storage_never_heard_of(
    store: Storage,
) -> None:
    job = await admit_one(store, request=FUTURE_REQUEST, images=4)
    stored = await store.jobs.get(job.id)
    assert stored is not None
    assert stored.request == FUTURE_REQUEST
    assert stored.images == 4
    # Types survive: a float that looks whole stays a float, booleans stay booleans.
    assert type(stored.request["guidance"]) is float
    nested = stored.request["nested"]
    assert isinstance(nested, dict)
    assert [type(v) for v in nested["list"]] == [int, float, type(None), bool, bool, str]  # type: ignore[union-attr]


async def test_each_record_has_its_own_request_and_changing_it_changes_nothing_stored(
    store: Storage,
) -> None:
    request = dict(BASE_REQUEST)
    job = await admit_one(store, request=request)
    request["prompt"] = "あとから変えた"  # the caller's dict, after admission
    first = await store.jobs.get(job.id)
    assert first is not None
    first.request["prompt"] = "書き換え"
    second = await store.jobs.get(job.id)
    assert second is not None
    assert second.request == BASE_REQUEST
    assert second.request is not first.request


@pytest.mark.parametrize(
    ("request_value", "message"),
    [
        (["not", "an", "object"], "request must be a JSON object"),
        ({1: "x"}, "request has a key that is not text: 1"),
        ({"guidance": float("nan")}, r"request\['guidance'\] must be a finite number"),
        ({"guidance": float("inf")}, r"request\['guidance'\] must be a finite number"),
        ({"when": datetime(2025, 1, 1)}, r"request\['when'\] is a datetime"),
        ({"tags": {"a", "b"}}, r"request\['tags'\] is a set"),
        ({"a": {"b": [{"c": object()}]}}, r"request\['a'\]\['b'\]\[0\]\['c'\] is a object"),
    ],
)
async def test_a_request_json_cannot_hold_is_a_value_error_naming_the_part(
    store: Storage, request_value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await store.admit(make_job(request=request_value))
    assert await store.jobs.pending() == []


@pytest.mark.parametrize(
    ("request_value", "where"),
    [
        ({"prompt": "ピカ\ud800チュウ"}, r"request\['prompt'\] is not valid text"),
        (
            {"extra": {"words": ["ok", "\udfff"]}},
            r"request\['extra'\]\['words'\]\[1\] is not valid",
        ),
        ({"ke\udc80y": "value"}, "the key .* of request is not valid text"),
    ],
)
async def test_text_with_a_lone_surrogate_is_a_clear_value_error_not_a_unicode_error(
    store: Storage, request_value: dict[str, JSON], where: str
) -> None:
    with pytest.raises(ValueError, match=where) as caught:
        await store.admit(make_job(request=request_value))
    # UnicodeEncodeError is a ValueError too: it must not be what arrives.
    assert not isinstance(caught.value, UnicodeError)
    assert "lone surrogate" in str(caught.value)
    assert await store.jobs.pending() == []


async def test_a_request_nested_too_deep_is_refused(store: Storage) -> None:
    deep: JSON = "bottom"
    for _ in range(40):
        deep = {"down": deep}
    with pytest.raises(ValueError, match="nests deeper than 32 levels"):
        await store.admit(make_job(extra=deep))
    assert await store.jobs.pending() == []


@pytest.mark.parametrize("images", [0, 17, -1, True, 2.0])
async def test_pictures_per_job_outside_1_to_16_are_a_value_error(
    store: Storage, images: object
) -> None:
    with pytest.raises(ValueError, match="images must be a whole number from 1 to 16"):
        await store.admit(make_job(images=images))
    assert await store.jobs.pending() == []


async def test_mark_done_stores_the_outcome_generation_reported(store: Storage) -> None:
    job = await admit_one(store, images=2)
    outcome: dict[str, JSON] = {
        "seeds": [7, 8],
        "prompt_used": "ほのおのドラゴン",
        "negative_used": "",
        "translated": True,
    }
    assert await store.jobs.mark_done(job.id, result_message_id=5, outcome=outcome)
    done = await store.jobs.get(job.id)
    assert done is not None
    assert (done.state, done.outcome, done.result_message_id) == ("done", outcome, 5)
    plain = await admit_one(store)
    await store.jobs.mark_done(plain.id)
    assert (await store.jobs.get(plain.id)).outcome is None  # type: ignore[union-attr]


async def test_an_outcome_json_cannot_hold_is_refused_and_the_job_is_unchanged(
    store: Storage,
) -> None:
    job = await admit_one(store)
    with pytest.raises(ValueError, match=r"outcome\['prompt_used'\] is not valid text"):
        await store.jobs.mark_done(job.id, outcome={"prompt_used": "\ud83d"})
    unchanged = await store.jobs.get(job.id)
    assert unchanged is not None
    assert (unchanged.state, unchanged.outcome) == ("queued", None)


async def test_mark_cancelled_records_who_cancelled_and_a_finished_job_keeps_it(
    open_store: object,
) -> None:
    store = await open_store(max_pending=10)  # type: ignore[operator]
    by_admin = await admit_one(store)
    assert await store.jobs.mark_cancelled(by_admin.id, by=55)
    assert not await store.jobs.mark_cancelled(by_admin.id, by=66)
    anonymous = await admit_one(store)
    assert await store.jobs.mark_cancelled(anonymous.id)
    assert (await store.jobs.get(by_admin.id)).cancelled_by == 55  # type: ignore[union-attr]
    got = await store.jobs.get(anonymous.id)
    assert (got.state, got.cancelled_by) == ("cancelled", None)  # type: ignore[union-attr]


async def test_by_user_pending_lists_one_users_unfinished_jobs_everywhere_oldest_first(
    open_store: object, clock: FakeClock
) -> None:
    store = await open_store(max_pending=10)  # type: ignore[operator]
    first = await admit_one(store, guild_id=1)
    clock.advance(seconds=1)
    second = await admit_one(store, guild_id=None)
    clock.advance(seconds=1)
    finished = await admit_one(store, guild_id=1)
    await admit_one(store, user_id=77)
    await store.jobs.mark_running(second.id)
    await store.jobs.mark_done(finished.id)
    pending = await store.jobs.by_user_pending(BASE_JOB.user_id)
    assert [(j.id, j.state) for j in pending] == [(first.id, "queued"), (second.id, "running")]
    assert await store.jobs.by_user_pending(12345) == []


async def test_a_locale_with_a_lone_surrogate_is_a_value_error(store: Storage) -> None:
    with pytest.raises(ValueError, match="locale is not valid text") as caught:
        await store.admit(make_job(locale="j\ud800"))
    assert not isinstance(caught.value, UnicodeError)
    assert await store.jobs.pending() == []
