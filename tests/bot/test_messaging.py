"""Message helpers: progress bar, edit throttle, escaping, the result embed, command hashing."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.i18n import t
from bot.messaging import EditThrottle, escape_user_text, progress_bar, result_embed
from bot.sync import payload_hash
from storage import Quota


def test_progress_bar_fills_in_proportion_and_clamps() -> None:
    assert progress_bar(0, 4, width=8) == "▱▱▱▱▱▱▱▱"
    assert progress_bar(2, 4, width=8) == "▰▰▰▰▱▱▱▱"
    assert progress_bar(4, 4, width=8) == "▰▰▰▰▰▰▰▰"
    assert progress_bar(9, 4, width=8) == "▰▰▰▰▰▰▰▰"  # clamped


def test_throttle_allows_one_edit_per_interval() -> None:
    now = [100.0]
    throttle = EditThrottle(2.0, clock=lambda: now[0])
    assert throttle.ready()
    throttle.mark()
    now[0] = 101.9
    assert not throttle.ready()
    assert abs(throttle.wait_time() - 0.1) < 1e-9
    now[0] = 102.0
    assert throttle.ready()
    assert throttle.wait_time() == 0.0


def test_escaping_defuses_mentions_and_markdown_and_cuts_to_the_limit() -> None:
    text = escape_user_text("@everyone **太字** <@123456789012345678>")
    assert "@everyone" not in text
    assert "\\*\\*" in text
    assert "<@123456789012345678>" not in text
    assert escape_user_text("あ" * 50, 10) == "あ" * 9 + "…"


def test_result_embed_fits_discord_limits_with_the_longest_inputs() -> None:
    quota = Quota(
        limit=20,
        period="day",
        used=3,
        remaining=17,
        reset_at=datetime(2030, 1, 1, tzinfo=UTC),
        source="global",
    )
    embed = result_embed(
        "ja",
        prompt="*" * 1000,  # every character escaped: twice as long
        negative_prompt="_" * 1000,
        seeds=[2**32 - 1],
        steps=50,
        seconds=12.34,
        user_id=1,
        quota=quota,
        truncated=True,
    )
    assert len(embed) <= 6000
    assert all(len(field.value or "") <= 1024 for field in embed.fields)
    values = [field.value for field in embed.fields]
    assert "12.3 s" in values
    assert any("17" in (v or "") and "<t:1893456000:R>" in (v or "") for v in values)


def test_result_embed_without_a_known_quota_leaves_the_quota_out() -> None:
    embed = result_embed(
        "en",
        prompt="ピカチュウ",
        negative_prompt="",
        seeds=[1],
        steps=3,
        seconds=0.5,
        user_id=1,
        quota=None,
        truncated=False,
    )
    names = [field.name for field in embed.fields]
    assert t("pokemon.field_quota", "en") not in names
    assert t("pokemon.field_seed", "en") in names


def test_command_hash_ignores_order_and_sees_any_change() -> None:
    a = {"name": "a", "description": "x", "options": [], "name_localizations": {"ja": "あ"}}
    b = {"name": "b", "description": "y", "options": []}
    assert payload_hash([a, b]) == payload_hash([b, dict(reversed(a.items()))])
    changed = {**a, "name_localizations": {"ja": "い"}}
    assert payload_hash([a, b]) != payload_hash([changed, b])


def test_result_embed_lists_every_seed_of_a_set_and_says_how_many_were_withheld() -> None:
    embed = result_embed(
        "en",
        prompt="ピカチュウ",
        negative_prompt="",
        seeds=[7, 8, 9],
        steps=3,
        seconds=1.0,
        user_id=1,
        quota=None,
        truncated=False,
        withheld=1,
    )
    fields = {field.name: field.value for field in embed.fields}
    assert fields["Seeds"] == "7, 8, 9"
    assert fields["⚠️"] == t("pokemon.withheld", "en", count=1)
    assert fields["⚠️"].startswith("1 picture of this set is not shown")
    assert embed.image.url is None  # several pictures show as the message's gallery
