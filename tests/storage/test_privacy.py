"""Privacy: prompt retention and deleting one user's data."""

from __future__ import annotations

import pytest

from storage import JSON, Storage
from storage.privacy import blank_texts
from tests.storage.conftest import BASE_JOB, FakeClock, make_job

GUILD, USER, OTHER, ADMIN = 2001, 1001, 1002, 5


async def admit(store: Storage, **changes: object) -> int:
    admission = await store.admit(make_job(**changes))
    assert admission.admitted, admission
    return admission.job.id  # type: ignore[union-attr]


async def test_prompts_older_than_retention_are_blanked_and_counts_stay(
    open_store: object, clock: FakeClock
) -> None:
    store = await open_store(default_limit=(100, "day"), max_pending=100)  # type: ignore[operator]
    old = await admit(store)
    await store.jobs.mark_done(old)
    clock.advance(days=20)
    recent = await admit(store)
    await store.jobs.mark_done(recent)
    clock.advance(days=11)  # old is 31 days old, recent 11
    before = await store.usage.totals(GUILD, 60)

    assert await store.privacy.blank_old_prompts(30) == 1

    old_job, recent_job = await store.jobs.get(old), await store.jobs.get(recent)
    assert old_job is not None
    assert old_job.request == {**BASE_JOB.request, "prompt": "", "negative_prompt": ""}
    assert old_job.prompt_blanked
    assert recent_job.request == BASE_JOB.request  # type: ignore[union-attr]
    assert await store.usage.totals(GUILD, 60) == before
    assert await store.privacy.blank_old_prompts(30) == 0


async def test_retention_keeps_the_prompt_of_unfinished_jobs(
    store: Storage, clock: FakeClock
) -> None:
    queued = await admit(store)
    clock.advance(days=40)
    assert await store.privacy.blank_old_prompts(30) == 0
    assert (await store.jobs.get(queued)).request == BASE_JOB.request  # type: ignore[union-attr]


async def test_retention_days_below_one_is_refused(store: Storage) -> None:
    with pytest.raises(ValueError, match="retention_days must be 1 or more"):
        await store.privacy.blank_old_prompts(0)


async def test_deleting_a_user_removes_their_jobs_and_limits_and_anonymises_the_audit(
    open_store: object,
) -> None:
    store = await open_store(default_limit=(100, "day"), max_pending=100)  # type: ignore[operator]
    theirs = await admit(store)
    await store.jobs.mark_done(theirs, result_message_id=1)
    regen_by_other = await admit(store, user_id=OTHER, parent_job_id=theirs)
    others_own = await admit(store, user_id=OTHER, prompt="ゼニガメ")
    await store.limits.set_user(GUILD, USER, 3, "day", actor_id=ADMIN)
    await store.limits.set_user(GUILD, OTHER, 4, "day", actor_id=USER)  # USER as an admin
    audit_before = len(await store.limits.audit(GUILD))

    removed = await store.privacy.delete_user(USER)

    assert removed >= 4
    assert await store.jobs.get(theirs) is None
    assert await store.jobs.recent_for_user(USER) == []
    assert (await store.limits.effective(GUILD, USER)).source == "global"
    regen = await store.jobs.get(regen_by_other)
    assert regen is not None
    assert regen.parent_job_id is None
    assert regen.request["prompt"] == ""
    assert (await store.jobs.get(others_own)).request["prompt"] == "ゼニガメ"  # type: ignore[union-attr]
    other_limit = (await store.limits.list_user_limits(GUILD))[0]
    assert (other_limit.user_id, other_limit.images, other_limit.updated_by) == (OTHER, 4, None)
    audit = await store.limits.audit(GUILD)
    assert len(audit) == audit_before
    assert all(USER not in (e.actor_id, e.target_user_id) for e in audit)
    assert [(e.actor_id, e.target_user_id) for e in audit] == [(None, OTHER), (ADMIN, None)]


async def test_forgetting_a_user_cancels_their_pending_jobs_and_deletes_all_in_one_go(
    open_store: object,
) -> None:
    store = await open_store(default_limit=(100, "day"), max_pending=100)  # type: ignore[operator]
    done = await admit(store)
    await store.jobs.mark_done(done)
    running = await admit(store)
    await store.jobs.mark_running(running)
    queued = await admit(store)
    others = await admit(store, user_id=OTHER)
    await store.limits.set_user(GUILD, USER, 3, "day", actor_id=ADMIN)
    version = await store.data_version()

    forgotten = await store.privacy.forget_user(USER)

    assert forgotten.cancelled == (running, queued)  # oldest first; the done one is not
    assert forgotten.deleted == 5  # three jobs, a limit, and an audit row anonymised
    assert await store.jobs.recent_for_user(USER) == []
    assert await store.usage.user_images(GUILD, USER) == 0
    assert [job.id for job in await store.jobs.pending()] == [others]
    assert await store.data_version() == version  # only another connection's commit moves it
    again = await store.privacy.forget_user(USER)
    assert (again.cancelled, again.deleted) == ((), 0)


async def test_data_version_moves_when_another_connection_commits(store: Storage) -> None:
    version = await store.data_version()
    async with await Storage.open(store.path) as elsewhere:
        await elsewhere.privacy.forget_user(USER)
        await elsewhere.admit(make_job(user_id=OTHER))
    assert await store.data_version() != version


async def test_deleting_an_unknown_user_changes_nothing(store: Storage) -> None:
    job = await admit(store)
    assert await store.privacy.delete_user(424242) == 0
    assert await store.jobs.get(job) is not None


async def test_deleting_a_user_blanks_their_prompt_in_regenerations_of_regenerations(
    open_store: object,
) -> None:
    # 🔁 copies the prompt, so every job descended from the user's job carries their text.
    store = await open_store(default_limit=(100, "day"), max_pending=100)  # type: ignore[operator]
    theirs = await admit(store, prompt="ひみつのプロンプト")
    child = await admit(store, user_id=OTHER, prompt="ひみつのプロンプト", parent_job_id=theirs)
    grandchild = await admit(store, user_id=1003, prompt="ひみつのプロンプト", parent_job_id=child)
    unrelated = await admit(store, user_id=1003, prompt="ゼニガメ")

    # two copies blanked, one job deleted
    assert await store.privacy.delete_user(USER) == 3

    assert (await store.jobs.get(child)).request["prompt"] == ""  # type: ignore[union-attr]
    kept = await store.jobs.get(grandchild)
    assert kept is not None
    assert (kept.request["prompt"], kept.request["negative_prompt"]) == ("", "")
    assert kept.parent_job_id == child
    assert (await store.jobs.get(unrelated)).request["prompt"] == "ゼニガメ"  # type: ignore[union-attr]


# --- text inside the request and outcome JSON ----------------------------------------------

OUTCOME: dict[str, JSON] = {
    "seeds": [7, 8],
    "prompt_used": "ほのおのドラゴン",
    "negative_used": "ぼやけた",
    "translated": True,
    "model": "rinna/japanese-stable-diffusion",
    "images": [{"seed": 7, "prompt_used": "いち"}, {"seed": 8, "prompt_used": "に"}],
    "none_used": None,
}
OUTCOME_BLANKED: dict[str, JSON] = {
    **OUTCOME,
    "prompt_used": "",
    "negative_used": "",
    "images": [{"seed": 7, "prompt_used": ""}, {"seed": 8, "prompt_used": ""}],
}


async def test_retention_blanks_every_text_key_of_the_request_and_outcome_and_keeps_the_rest(
    open_store: object, clock: FakeClock
) -> None:
    store = await open_store(default_limit=(100, "day"), max_pending=100)  # type: ignore[operator]
    request: dict[str, JSON] = {**BASE_JOB.request, "translate": "auto", "strength": 0.35}
    old = await admit(store, request=request, images=2)
    await store.jobs.mark_done(old, outcome=OUTCOME)
    clock.advance(days=31)

    assert await store.privacy.blank_old_prompts(30) == 1

    job = await store.jobs.get(old)
    assert job is not None
    assert job.request == {**request, "prompt": "", "negative_prompt": ""}
    assert job.outcome == OUTCOME_BLANKED
    assert await store.privacy.blank_old_prompts(30) == 0


@pytest.mark.parametrize(
    ("outcome", "blanked"),
    [
        ({"seeds": [1, 2]}, None),
        ({"prompt_used": ""}, None),
        ({"prompt_used": None}, None),
        ({"Prompt": "x", "prompts": "x", "used": "x", "prompt_used_at": 1.5}, None),
        ({"prompt_used": "x"}, {"prompt_used": ""}),
        ({"a": {"b_used": ["x", "y"]}}, {"a": {"b_used": ""}}),
        ({"list": [{"prompt": 0}, {"seed": 1}]}, {"list": [{"prompt": ""}, {"seed": 1}]}),
        ({"x_prompt": {"prompt": "nested"}}, {"x_prompt": ""}),
    ],
)
async def test_the_sql_that_finds_text_and_the_python_that_blanks_it_apply_one_rule(
    open_store: object, clock: FakeClock, outcome: dict[str, JSON], blanked: JSON
) -> None:
    # The row is found (and counted) exactly when blanking changes its outcome.
    store = await open_store(default_limit=(100, "day"), max_pending=100)  # type: ignore[operator]
    job_id = await admit(store, request={"prompt": "", "negative_prompt": "", "seed": 1})
    await store.jobs.mark_done(job_id, outcome=outcome)
    clock.advance(days=31)
    assert blank_texts(outcome) == (outcome if blanked is None else blanked)
    assert await store.privacy.blank_old_prompts(30) == (0 if blanked is None else 1)
    assert (await store.jobs.get(job_id)).outcome == blank_texts(outcome)  # type: ignore[union-attr]


async def test_deleting_a_user_blanks_the_outcome_text_of_others_copies_too(
    open_store: object,
) -> None:
    store = await open_store(default_limit=(100, "day"), max_pending=100)  # type: ignore[operator]
    theirs = await admit(store)
    await store.jobs.mark_done(theirs, outcome=OUTCOME)
    copy = await admit(store, user_id=OTHER, parent_job_id=theirs)
    await store.jobs.mark_done(copy, outcome=OUTCOME)

    await store.privacy.delete_user(USER)

    kept = await store.jobs.get(copy)
    assert kept is not None
    assert kept.outcome == OUTCOME_BLANKED
    assert kept.request["prompt"] == ""


async def test_deleting_a_user_forgets_who_cancelled_and_who_blocked_words(
    open_store: object,
) -> None:
    store = await open_store(default_limit=(100, "day"), max_pending=100)  # type: ignore[operator]
    others = await admit(store, user_id=OTHER)
    await store.jobs.mark_cancelled(others, by=USER)  # USER as an admin
    await store.blocklist.add(GUILD, "ミュウ", actor_id=USER)
    await store.blocklist.add(GUILD, "ミュウツー", actor_id=ADMIN)
    await store.blocklist.remove(GUILD, "ミュウツー", actor_id=USER)

    # cancelled_by, one added_by, two audit actors
    assert await store.privacy.delete_user(USER) == 4

    cancelled = await store.jobs.get(others)
    assert cancelled is not None
    assert (cancelled.state, cancelled.cancelled_by) == ("cancelled", None)
    assert await store.blocklist.words(GUILD) == ["ミュウ"]
    added_by = await store.db.read(
        lambda tx: tx.scalar("SELECT added_by FROM blocklist WHERE word = ?", ("ミュウ",))
    )
    assert added_by is None
    audit = await store.blocklist.audit(GUILD)
    assert [(e.action, e.word, e.actor_id) for e in audit] == [
        ("remove", "ミュウツー", None),
        ("add", "ミュウツー", ADMIN),
        ("add", "ミュウ", None),
    ]
