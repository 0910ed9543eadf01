"""`validate_pokemon`: raw options + settings → a request, or a user-facing error naming the problem."""

from __future__ import annotations

import math

import pytest

from bot.errors import UserFacingError
from bot.i18n import t
from bot.settings import Settings
from bot.validation import (
    MAX_PROMPT_CHARS,
    SEED_MAX,
    check_request,
    clean_text,
    mistyped_option,
    size_dimensions,
    text_option,
    validate_pokemon,
    whole_number,
)
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
        translate=True,  # POKEMON_TRANSLATE's default, auto
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
        # Text SQLite cannot store: a lone surrogate (half of an emoji).
        ({"prompt": "ピカ\ud800"}, "error.text_unencodable"),
        ({"prompt": "\udc00"}, "error.text_unencodable"),
        ({"prompt": "ok", "negative": "\ud83d"}, "error.text_unencodable"),
        # The wrong JSON type, as a modified client can send (discord.py passes it through).
        ({"prompt": 12345}, "error.invalid_option"),
        ({"prompt": ["ピカ"]}, "error.invalid_option"),
        ({"prompt": "ok", "negative": 0}, "error.invalid_option"),
        ({"prompt": "ok", "seed": "42"}, "error.invalid_option"),
        ({"prompt": "ok", "seed": 4.0}, "error.invalid_option"),
        ({"prompt": "ok", "steps": True}, "error.invalid_option"),
        ({"prompt": "ok", "guidance": "7.5"}, "error.invalid_option"),
        ({"prompt": "ok", "guidance": False}, "error.invalid_option"),
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


def test_a_text_option_keeps_emoji_and_japanese_and_refuses_only_broken_text() -> None:
    assert text_option("ピカチュウ 🔥\u200b") == "ピカチュウ 🔥"
    assert text_option(None) == ""
    with pytest.raises(UserFacingError) as caught:
        text_option("\ud83d\ude00")  # a pair of lone surrogates is not an emoji in Python
    assert caught.value.key == "error.text_unencodable"
    assert caught.value.localized("ja") == t("error.text_unencodable", "ja")


def test_whole_number_names_its_range_and_quotes_a_mistyped_value_shortly() -> None:
    assert whole_number(0, 0, 10, "error.images_range") == 0
    with pytest.raises(UserFacingError) as out_of_range:
        whole_number(2**63, 0, 10, "error.images_range")
    assert out_of_range.value.localized("en") == t("error.images_range", "en", min=0, max=10)
    with pytest.raises(UserFacingError) as mistyped:
        whole_number("x" * 500, 0, 10, "error.images_range")
    assert mistyped.value.key == "error.invalid_option"
    assert len(str(mistyped.value.params["value"])) <= 100


def option(name: str, kind: int, value: object) -> dict[str, object]:
    return {"name": name, "type": kind, "value": value}


@pytest.mark.parametrize(
    ("options", "found"),
    [
        ([option("prompt", 3, "ピカ"), option("guidance", 10, 7.5)], None),
        ([option("steps", 4, 5), option("nsfw", 5, False), option("u", 6, "123")], None),
        ([option("guidance", 10, "abc")], ("guidance", "abc")),
        ([option("guidance", 10, True)], ("guidance", True)),
        ([option("prompt", 3, 5)], ("prompt", 5)),
        ([option("steps", 4, "5")], ("steps", "5")),
        ([option("steps", 4, 1.5)], ("steps", 1.5)),
        ([option("flag", 5, 1)], ("flag", 1)),
        ([option("user", 6, "abc")], ("user", "abc")),
        ([option("user", 6, "١٢٣")], ("user", "١٢٣")),  # digits, but not ASCII ones
        ([option("image", 11, 42)], ("image", 42)),
        ([{"name": "prompt", "type": 3}], ("prompt", None)),
        (
            [{"name": "set", "type": 1, "options": [option("images", 4, "5")]}],
            ("images", "5"),
        ),
        ([{"name": "set", "type": 1, "options": [option("images", 4, 5)]}], None),
        ("not a list", ("options", "not a list")),
        (["not an object"], ("options", "not an object")),
    ],
)
def test_mistyped_option_finds_values_discord_py_would_crash_on_or_pass_through(
    options: object, found: tuple[str, object] | None
) -> None:
    assert mistyped_option({"name": "cmd", "options": options}) == found


# ---- sizes, several pictures, translation, image-to-image -----------------------------------


@pytest.mark.parametrize(
    ("side", "size", "expected"),
    [
        (512, "square", (512, 512)),
        (512, "portrait", (512, 768)),
        (512, "landscape", (768, 512)),
        (64, "portrait", (64, 96)),
        (200, "landscape", (304, 200)),  # 300 rounded to a multiple of 8
    ],
)
def test_size_presets_follow_pokemon_size(side: int, size: str, expected: tuple[int, int]) -> None:
    assert size_dimensions(side, size) == expected


def test_size_choice_sets_width_and_height(settings: Settings) -> None:
    request = validate_pokemon(settings, "ピカチュウ", size="portrait")
    assert (request.width, request.height) == (256, 384)


def test_size_over_the_pixel_cap_is_refused_naming_the_cap(settings: Settings) -> None:
    capped = settings.model_copy(update={"pokemon_max_pixels": 256 * 256})
    validate_pokemon(capped, "ピカチュウ", size="square")
    with pytest.raises(UserFacingError) as caught:
        validate_pokemon(capped, "ピカチュウ", size="landscape")
    assert caught.value.key == "error.size_too_large"
    assert caught.value.params == {"width": 384, "height": 256, "max": 256 * 256}


def test_a_stored_request_over_a_lowered_pixel_cap_is_refused(settings: Settings) -> None:
    request = validate_pokemon(settings, "ピカチュウ", size="portrait")
    capped = settings.model_copy(update={"pokemon_max_pixels": 256 * 256})
    with pytest.raises(UserFacingError, match=r"error\.size_too_large"):
        check_request(capped, request)


@pytest.mark.parametrize("size", ["huge", 3, None])
def test_unknown_size_is_refused(settings: Settings, size: object) -> None:
    if size is None:
        assert validate_pokemon(settings, "ピカチュウ", size=None).width == 256
        return
    with pytest.raises(UserFacingError, match=r"error\.invalid_option"):
        validate_pokemon(settings, "ピカチュウ", size=size)  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [0, 5, True, "2"])
def test_count_outside_one_to_four_is_refused(settings: Settings, count: object) -> None:
    with pytest.raises(UserFacingError):
        validate_pokemon(settings, "ピカチュウ", count=count)  # type: ignore[arg-type]


def test_translate_choice_and_its_default(settings: Settings) -> None:
    off = settings.model_copy(update={"pokemon_translate": "off"})
    assert validate_pokemon(settings, "a cat", translate="off").translate is False
    assert validate_pokemon(off, "a cat").translate is False
    assert validate_pokemon(off, "a cat", translate="auto").translate is True


@pytest.mark.parametrize(
    ("strength", "steps", "key"),
    [
        (0.05, 20, "error.strength_range"),
        (0.95, 20, "error.strength_range"),
        (math.nan, 20, "error.strength_range"),
        (0.1, 5, "error.strength_steps"),
    ],
)
def test_bad_strength_is_refused(settings: Settings, strength: float, steps: int, key: str) -> None:
    with pytest.raises(UserFacingError) as caught:
        validate_pokemon(settings, "ピカチュウ", strength=strength, steps=steps, has_image=True)
    assert caught.value.key == key


def test_strength_without_an_image_is_refused(settings: Settings) -> None:
    with pytest.raises(UserFacingError, match=r"error\.strength_without_image"):
        validate_pokemon(settings, "ピカチュウ", strength=0.5)


def test_an_image_to_image_request_without_its_picture_is_refused_as_gone(
    settings: Settings,
) -> None:
    stored = validate_pokemon(settings, "ピカチュウ", strength=0.5, has_image=True)
    assert stored.strength == 0.5
    assert stored.init_image is None  # as a job row gives it back: the picture is never stored
    with pytest.raises(UserFacingError, match=r"error\.source_gone"):
        check_request(settings, stored)
    assert check_request(settings, stored, source_coming=True).strength == 0.5
