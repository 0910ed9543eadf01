"""`bot.jobs.intake.Intake`: the words of a refused admission, in both languages."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.i18n import t
from bot.jobs.intake import Intake
from storage import Admission, Quota
from tests.bot.jobs.fakes import context


def intake() -> Intake:
    return Intake(context(), follow=lambda active: None, on_submitted=lambda: None)  # type: ignore[arg-type,return-value]


def admission(*, remaining: int, retry_at: dt.datetime | None) -> Admission:
    quota = Quota(
        limit=5,
        period="day",
        used=5 - remaining,
        remaining=remaining,
        reset_at=None,
        source="guild",
    )
    return Admission(admitted=False, job=None, reason="rate_limit", quota=quota, retry_at=retry_at)


@pytest.mark.parametrize("locale", ["en", "ja"])
def test_asking_for_more_than_is_left_with_no_retry_time_names_no_time(locale: str) -> None:
    """`/pokemon count:4` with three left and no time known when more free up."""
    refusal = intake().refusal(admission(remaining=3, retry_at=None), locale, images=4)
    text = refusal.localized(locale)
    assert "—" not in text
    assert "{" not in text
    assert text == t(
        "error.not_enough_quota_no_retry",
        locale,
        asked=t("count.images", locale, count=4),
        left=t("count.images", locale, count=3),
        period=t("pokemon.period.day", locale),
    )
    assert refusal.code == "not_enough_quota"


@pytest.mark.parametrize("locale", ["en", "ja"])
def test_asking_for_more_than_is_left_names_when_more_are_possible(locale: str) -> None:
    when = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    refusal = intake().refusal(admission(remaining=3, retry_at=when), locale, images=4)
    assert f"<t:{int(when.timestamp())}:R>" in refusal.localized(locale)


@pytest.mark.parametrize("locale", ["en", "ja"])
def test_a_used_up_limit_with_no_retry_time_names_no_time(locale: str) -> None:
    refusal = intake().refusal(admission(remaining=0, retry_at=None), locale)
    text = refusal.localized(locale)
    assert "—" not in text
    assert text == t(
        "error.rate_limited_no_retry", locale, limit=5, period=t("pokemon.period.day", locale)
    )
    assert refusal.code == "rate_limited"
