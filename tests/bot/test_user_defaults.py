"""`apply_defaults`: a user's /settings fill the /pokemon options left out, within today's limits."""

from __future__ import annotations

import pytest

from bot.i18n import t
from bot.settings import Settings
from bot.user_defaults import apply_defaults, note_text
from storage import UserDefaults

MINE = UserDefaults(size="portrait", count=3, translate=False, negative="ぼやけた")
LEFT_OUT = {"size": None, "count": None, "translate": None, "negative": None}


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None, pokemon_size=256)


def test_options_left_out_take_the_users_defaults(settings: Settings) -> None:
    applied = apply_defaults(settings, MINE, **LEFT_OUT, limit_images=20)

    assert (applied.size, applied.count, applied.translate, applied.negative) == (
        "portrait",
        3,
        "off",
        "ぼやけた",
    )
    assert applied.notes == ()


def test_an_option_typed_in_always_wins(settings: Settings) -> None:
    applied = apply_defaults(
        settings,
        MINE,
        size="landscape",
        count=1,
        translate="auto",
        negative="暗い",
        limit_images=20,
    )

    assert (applied.size, applied.count, applied.translate, applied.negative) == (
        "landscape",
        1,
        "auto",
        "暗い",
    )


def test_no_defaults_leave_the_options_to_the_server(settings: Settings) -> None:
    applied = apply_defaults(settings, UserDefaults(), **LEFT_OUT, limit_images=20)

    assert (applied.size, applied.count, applied.translate, applied.negative) == (
        None,
        None,
        None,
        None,
    )


def test_translate_on_is_auto(settings: Settings) -> None:
    applied = apply_defaults(settings, UserDefaults(translate=True), **LEFT_OUT, limit_images=None)
    assert applied.translate == "auto"


def test_a_size_the_server_no_longer_allows_is_square_and_said() -> None:
    small = Settings(_env_file=None, pokemon_size=512, pokemon_max_pixels=512 * 512)

    applied = apply_defaults(small, UserDefaults(size="portrait"), **LEFT_OUT, limit_images=None)

    assert applied.size == "square"
    assert applied.notes == (("settings.note.size_not_allowed", {"size": "portrait"}),)


def test_a_count_over_the_whole_limit_is_the_limit_and_said(settings: Settings) -> None:
    applied = apply_defaults(settings, UserDefaults(count=4), **LEFT_OUT, limit_images=2)

    assert applied.count == 2
    assert applied.notes == (("settings.note.count_over_limit", {"count": 4, "limit": 2}),)


@pytest.mark.parametrize("limit", [None, 4, 20, 0])
def test_a_count_within_the_limit_or_unlimited_or_blocked_is_kept(
    settings: Settings, limit: int | None
) -> None:
    # Over what is left now is admission's to refuse, like a typed count; blocked too.
    applied = apply_defaults(settings, UserDefaults(count=4), **LEFT_OUT, limit_images=limit)
    assert applied.count == 4
    assert applied.notes == ()


def test_a_typed_count_is_never_lowered(settings: Settings) -> None:
    applied = apply_defaults(
        settings, UserDefaults(count=1), **{**LEFT_OUT, "count": 4}, limit_images=2
    )
    assert applied.count == 4
    assert applied.notes == ()


def test_notes_read_in_the_users_language_with_the_size_named_as_pokemons_choices() -> None:
    note = ("settings.note.size_not_allowed", {"size": "portrait"})

    assert "portrait" in note_text(note, "en")
    assert t("choice.size.portrait", "ja") in note_text(note, "ja")
