"""`validate_pokemon`: raw options + settings → a request, or a user-facing error naming the problem."""

from __future__ import annotations

import math

import pytest

from bot.errors import UserFacingError
from bot.i18n import t
from bot.settings import Settings
from bot.validation import MAX_PROMPT_CHARS, SEED_MAX, clean_text, validate_pokemon
from generation.types import GenerationRequest


@pytest.fixture
def settings() -> Settings:
    return Settings(
        _env_file=None,
        pokemon_steps=20,
        pokemon_max_steps=30,
        pokemon_size=256,
        pokemon_guidance=7.0,
        pokemon_scheduler="lms",
    )


def fixed_seed() -> int:
    return 1234


def test_defaults_fill_missing_options_from_settings(settings: Settings) -> None:
    request = validate_pokemon(settings, "ピカチュウ", new_seed=fixed_seed)
    assert request == GenerationRequest(
        prompt="ピカチュウ",
        negative_prompt="",
        seed=1234,
        steps=20,
        guidance=7.0,
        height=256,
        width=256,
        scheduler="lms",
    )


def test_given_options_are_used_as_typed(settings: Settings) -> None:
    request = validate_pokemon(
        settings, "炎のねこ", negative="ぼやけた", seed=0, steps=30, guidance=1.0
    )
    assert (request.negative_prompt, request.seed, request.steps, request.guidance) == (
        "ぼやけた",
        0,
        30,
        1.0,
    )


def test_japanese_text_is_kept_intact(settings: Settings) -> None:
    # Full-width letters, half-width katakana with voiced marks, emoji: the tokenizer's job.
    prompt = "ﾋﾟｶﾁｭｳ　ＡＢＣ の 🔥 ポケモン、かわいい！"
    assert validate_pokemon(settings, prompt).prompt == prompt


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("\u200bピカ\u200dチュウ\ufeff", "ピカチュウ"),  # zero-width space/joiner, BOM
        ("\u202euyhcakip\u202c", "uyhcakip"),  # bidi override and pop
        ("\u2066ピカ\u2069", "ピカ"),  # bidi isolates
        ("  ピカ\nチュウ\t ", "ピカ チュウ"),  # control characters become spaces, ends stripped
        ("a\x00b", "a b"),
    ],
)
def test_clean_text_drops_invisible_and_control_characters(raw: str, cleaned: str) -> None:
    assert clean_text(raw) == cleaned


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"prompt": ""}, "error.prompt_empty"),
        ({"prompt": "   \u3000 "}, "error.prompt_empty"),  # ideographic space too
        ({"prompt": "\u200b\u200c\u200d\u2060\ufeff"}, "error.prompt_empty"),
        ({"prompt": "\u202e\u202a\u2066"}, "error.prompt_empty"),
        ({"prompt": None}, "error.prompt_empty"),
        ({"prompt": "あ" * (MAX_PROMPT_CHARS + 1)}, "error.prompt_too_long"),
        ({"prompt": "ok", "negative": "x" * 1001}, "error.negative_too_long"),
        ({"prompt": "ok", "steps": 0}, "error.steps_range"),
        ({"prompt": "ok", "steps": 31}, "error.steps_range"),  # settings max, not Discord's 150
        ({"prompt": "ok", "steps": -5}, "error.steps_range"),
        ({"prompt": "ok", "seed": -1}, "error.seed_range"),
        ({"prompt": "ok", "seed": SEED_MAX + 1}, "error.seed_range"),
        ({"prompt": "ok", "guidance": math.nan}, "error.guidance_range"),
        ({"prompt": "ok", "guidance": math.inf}, "error.guidance_range"),
        ({"prompt": "ok", "guidance": -math.inf}, "error.guidance_range"),
        ({"prompt": "ok", "guidance": 0.5}, "error.guidance_range"),
        ({"prompt": "ok", "guidance": 20.5}, "error.guidance_range"),
    ],
)
def test_bad_options_raise_a_user_facing_error_with_its_key(
    settings: Settings, options: dict[str, object], key: str
) -> None:
    prompt = options.pop("prompt")
    with pytest.raises(UserFacingError) as caught:
        validate_pokemon(settings, prompt, **options)  # type: ignore[arg-type]
    assert caught.value.key == key
    # The message renders in both languages with the error's parameters (no KeyError).
    assert caught.value.localized("en")
    assert caught.value.localized("ja")
    assert not caught.value.refund  # nothing was admitted, nothing to refund


def test_prompt_at_the_length_limit_is_accepted(settings: Settings) -> None:
    assert len(validate_pokemon(settings, "あ" * MAX_PROMPT_CHARS).prompt) == MAX_PROMPT_CHARS


def test_length_is_counted_after_invisible_characters_are_removed(settings: Settings) -> None:
    prompt = "あ" * MAX_PROMPT_CHARS + "\u200b" * 50
    assert validate_pokemon(settings, prompt).prompt == "あ" * MAX_PROMPT_CHARS


def test_seed_bounds_are_inclusive(settings: Settings) -> None:
    assert validate_pokemon(settings, "ok", seed=SEED_MAX).seed == SEED_MAX
    assert validate_pokemon(settings, "ok", seed=0).seed == 0


def test_missing_seed_is_drawn_fresh_each_time(settings: Settings) -> None:
    seeds = {validate_pokemon(settings, "ok").seed for _ in range(20)}
    assert len(seeds) > 1
    assert all(0 <= s <= SEED_MAX for s in seeds)


def test_range_message_names_the_settings_limit(settings: Settings) -> None:
    with pytest.raises(UserFacingError) as caught:
        validate_pokemon(settings, "ok", steps=31)
    assert "30" in caught.value.localized("en")
    assert caught.value.localized("ja") == t("error.steps_range", "ja", min=1, max=30)
