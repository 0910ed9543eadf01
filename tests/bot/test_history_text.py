"""`/history`'s page text: each picture with its link, prompt or retention note, in both languages."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from bot.history_text import DESCRIPTION_MAX, PAGE_SIZE, history_text, message_link
from storage import JSON, JobRecord

WHEN = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def job(
    job_id: int, *, prompt: str = "ピカチュウ", images: int = 1, seeds: list[JSON] | None = None
) -> JobRecord:
    return JobRecord(
        id=job_id,
        user_id=7,
        guild_id=100,
        channel_id=200,
        request={"prompt": prompt, "negative_prompt": "", "seed": 11, "width": 512, "height": 768},
        images=images,
        locale="en",
        state="done",
        error_code=None,
        fault=None,
        outcome=None if seeds is None else {"seeds": seeds},
        cancelled_by=None,
        created_at=WHEN,
        started_at=WHEN,
        finished_at=WHEN,
        interaction_expires_at=None,
        progress_message_id=None,
        result_message_id=9000 + job_id,
        parent_job_id=None,
        reply_to_message_id=None,
    )


def test_each_picture_links_to_its_message_with_seed_size_and_prompt() -> None:
    text = history_text([job(1, seeds=[4242])], 0, "en")

    assert message_link(100, 200, 9001) in text
    assert "4242" in text  # the seed drawn, from the outcome
    assert "512×768" in text
    assert "ピカチュウ" in text
    assert f"<t:{int(WHEN.timestamp())}:f>" in text


def test_the_request_seed_is_shown_when_the_outcome_has_none() -> None:
    assert "seed 11" in history_text([job(1)], 0, "en")


def test_a_blanked_prompt_says_the_retention_policy_removed_it() -> None:
    english = history_text([job(1, prompt="")], 0, "en")
    japanese = history_text([job(1, prompt="")], 0, "ja")

    assert "retention" in english
    assert "保存期間" in japanese


def test_numbers_count_across_pages_and_a_set_says_its_size() -> None:
    text = history_text([job(1, images=3)], 2, "en")

    assert text.startswith(f"**{2 * PAGE_SIZE + 1}.**")
    assert "(set of 3)" in text


def test_user_text_cannot_ping_or_format() -> None:
    text = history_text([job(1, prompt="@everyone **bold**")], 0, "en")

    assert "@everyone" not in text
    assert "\\*\\*bold\\*\\*" in text


def test_no_pictures_says_how_to_draw_one_and_a_page_past_the_end_says_no_more() -> None:
    assert "/pokemon" in history_text([], 0, "en")
    assert "No more" in history_text([], 1, "en")


def test_a_page_of_long_prompts_stays_inside_an_embed_description() -> None:
    jobs = [job(n, prompt="長い" * 900) for n in range(PAGE_SIZE)]
    assert len(history_text(jobs, 0, "ja")) <= DESCRIPTION_MAX


def test_an_upscale_names_the_job_it_enlarged_in_place_of_a_prompt() -> None:
    upscale = replace(
        job(2, prompt=""),
        request={"prompt": "", "kind": "upscale", "seed": 11, "width": 512, "height": 768},
        parent_job_id=1,
    )

    assert "⬆️ 4× upscale of job 1" in history_text([upscale], 0, "en")
    assert "ジョブ 1 の 4 倍拡大" in history_text([upscale], 0, "ja")
    assert "retention" not in history_text([upscale], 0, "en")
