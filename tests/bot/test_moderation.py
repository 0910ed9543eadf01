"""The pure moderation rules: blocklist normalization and Discord's command permissions."""

from __future__ import annotations

import pytest

from bot.moderation import (
    CHANNEL_TYPE,
    ROLE_TYPE,
    USER_TYPE,
    Overwrite,
    blocked_word,
    command_allowed,
    normalize,
)

GUILD, CHANNEL, OTHER_CHANNEL, USER, ROLE, ROLE2 = 1000, 11, 12, 21, 31, 32


@pytest.mark.parametrize("form", ["ピカチュウ", "ﾋﾟｶﾁｭｳ", "ぴかちゅう"])
def test_katakana_half_width_and_hiragana_are_one_word(form: str) -> None:
    assert normalize(form) == "ぴかちゅう"


def test_full_width_latin_and_case_fold_to_plain_lower_case() -> None:
    assert normalize("ＰＩＫＡ Chu") == normalize("pika chu") == "pika chu"


def test_white_space_runs_become_one_space() -> None:
    assert normalize("  ぴか \u3000 ちゅう\n") == "ぴか ちゅう"


@pytest.mark.parametrize(
    "prompt", ["かわいいピカチュウ", "かわいいﾋﾟｶﾁｭｳ", "かわいいぴかちゅう", "ピカチュウの絵"]
)
def test_a_blocked_word_is_found_inside_a_prompt_in_each_form(prompt: str) -> None:
    assert blocked_word([prompt], ["ぴかちゅう"]) == "ぴかちゅう"


def test_a_blocked_word_in_the_negative_prompt_is_found_too() -> None:
    assert blocked_word(["いぬ", "ＢＡＤ"], ["bad"]) == "bad"


def test_a_prompt_without_the_word_passes() -> None:
    assert blocked_word(["ゼニガメ", ""], ["ぴかちゅう"]) is None


def allowed(
    command: list[Overwrite], application: list[Overwrite] | None = None, **where: int
) -> bool:
    place = {"guild_id": GUILD, "channel_id": CHANNEL, "user_id": USER}
    place.update(where)
    roles = [GUILD, ROLE]  # @everyone and one role
    return command_allowed(command, application or [], roles=roles, **place)


def test_no_overwrites_allow_everyone_everywhere() -> None:
    assert allowed([])


def test_a_channel_turned_off_refuses_there_only() -> None:
    off = [Overwrite(CHANNEL, CHANNEL_TYPE, False)]
    assert not allowed(off)
    assert allowed(off, channel_id=OTHER_CHANNEL)


def test_a_specific_channel_beats_all_channels() -> None:
    only_here = [Overwrite(GUILD - 1, CHANNEL_TYPE, False), Overwrite(CHANNEL, CHANNEL_TYPE, True)]
    assert allowed(only_here)
    assert not allowed(only_here, channel_id=OTHER_CHANNEL)


def test_a_member_entry_beats_roles_and_an_allowing_role_beats_everyone() -> None:
    everyone_off = [Overwrite(GUILD, ROLE_TYPE, False)]
    assert not allowed(everyone_off)
    assert allowed([*everyone_off, Overwrite(ROLE, ROLE_TYPE, True)])
    assert not allowed([Overwrite(ROLE, ROLE_TYPE, True), Overwrite(USER, USER_TYPE, False)])


def test_command_overwrites_come_before_the_applications() -> None:
    app_off = [Overwrite(CHANNEL, CHANNEL_TYPE, False)]
    assert not allowed([], app_off)
    assert allowed([Overwrite(CHANNEL, CHANNEL_TYPE, True)], app_off)
