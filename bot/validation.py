"""Raw options → checked values (a `GenerationRequest` for `/pokemon`), or a `UserFacingError`.
Pure: no I/O, no clock.

Discord already bounds the options (`app_commands.Range`), but a request can also come from a
🔁 reaction, a resumed job or a client that ignores the ranges (discord.py itself checks neither
ranges nor JSON types: a prompt may arrive as a number, a seed as a string), so every option is
checked again here, with one helper per kind that every command uses:

- `text_option`: a string (else `error.invalid_option`) that SQLite can store as UTF-8 (a lone
  surrogate, half of an emoji, is refused with `error.text_unencodable`), cleaned.
- `whole_number`: an int, not a bool (else `error.invalid_option`), within bounds (else the
  caller's range message, with `min` and `max`).
- `real_number`: an int or float, not a bool (else `error.invalid_option`), finite and within
  bounds (else the caller's range message).

Some wrong types never reach a command: discord.py turns a number option into `float(value)`
and a user, channel, role or attachment option into `int(value)` while it builds the
namespace, before any check or error handler runs, so `"abc"` there kills its task with a
traceback and the user gets no answer. `mistyped_option` finds such an option in the raw
interaction data, for the command tree to refuse with `MistypedOption` first.
"""

from __future__ import annotations

import math
import random
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import replace

from discord import app_commands

from bot.errors import UserFacingError
from bot.settings import Settings
from generation.types import MAX_COUNT, UPSCALE, GenerationRequest

MAX_PROMPT_CHARS = 1000
MAX_NEGATIVE_CHARS = 1000
SEED_MAX = 2**32 - 1
MIN_STEPS = 1
MIN_GUIDANCE = 1.0
MAX_GUIDANCE = 20.0
MIN_COUNT = 1
# Image-to-image: how much of the source picture is repainted.
MIN_STRENGTH = 0.1
MAX_STRENGTH = 0.9
VARY_SUBTLE = 0.35
VARY_STRONG = 0.65  # also the default of `/pokemon image:` without a strength
# The `/pokemon size:` choices; each side is a multiple of 8 (see `size_dimensions`).
SIZES = ("square", "portrait", "landscape")
TRANSLATE_CHOICES = ("auto", "off")


def size_dimensions(side: int, size: str) -> tuple[int, int]:
    """(width, height) of a size choice for POKEMON_SIZE `side`: square side×side, portrait
    side×1.5·side, landscape 1.5·side×side, the long side rounded to a multiple of 8
    (512 gives 512×512, 512×768, 768×512; the tests' 64 gives 64×64, 64×96, 96×64)."""
    long = max(8, round(side * 1.5 / 8) * 8)
    return {"square": (side, side), "portrait": (side, long), "landscape": (long, side)}[size]


def clean_text(text: str | None) -> str:
    """Drop format characters (zero-width, bidi controls, BOM), turn control characters into
    spaces, and strip the ends. Everything else, Japanese included, is kept as typed."""
    if not text:
        return ""
    out: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if category == "Cf":  # U+200B..U+200F, U+202A..U+202E, U+2060..U+2069, U+FEFF, ...
            continue
        if category == "Cc":  # newlines and tabs become spaces; NUL and friends too
            out.append(" ")
            continue
        out.append(char)
    return "".join(out).strip()


def shown(value: object) -> str:
    """A value as the invalid-option message quotes it: short, on one line."""
    return clean_text(repr(value))[:100]


def encodable(text: str) -> bool:
    """Whether `text` can be stored and sent as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text_option(value: object) -> str:
    """A text option, cleaned (`clean_text`); None is "". Refuses a value that is not a string
    and text that cannot be encoded (a lone surrogate)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UserFacingError("error.invalid_option", value=shown(value))
    if not encodable(value):
        raise UserFacingError("error.text_unencodable")
    return clean_text(value)


def whole_number(value: object, low: int, high: int, range_key: str) -> int:
    """An integer option within `low..high`; `range_key` names the range message."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserFacingError("error.invalid_option", value=shown(value))
    if not low <= value <= high:
        raise UserFacingError(range_key, min=low, max=high)
    return value


def real_number(value: object, low: float, high: float, range_key: str) -> float:
    """A number option (int or float), finite and within `low..high`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserFacingError("error.invalid_option", value=shown(value))
    if not math.isfinite(value) or not low <= value <= high:
        raise UserFacingError(range_key, min=low, max=high)
    return float(value)


class MistypedOption(app_commands.AppCommandError):
    """An option whose JSON value does not fit its declared type (see `mistyped_option`)."""

    def __init__(self, name: str, value: object) -> None:
        super().__init__(f"option {name!r} has a value of the wrong type: {shown(value)}")
        self.name = name
        self.value = value


_SUB_COMMAND, _GROUP, _STRING, _INTEGER, _BOOLEAN, _NUMBER = 1, 2, 3, 4, 5, 10
_SNOWFLAKE_TYPES = frozenset({6, 7, 8, 9, 11})  # user, channel, role, mentionable, attachment


def _fits(kind: object, value: object) -> bool:
    if kind == _STRING:
        return isinstance(value, str)
    if kind == _INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == _BOOLEAN:
        return isinstance(value, bool)
    if kind == _NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind in _SNOWFLAKE_TYPES:
        return isinstance(value, str) and value.isascii() and value.isdigit()
    return True  # a type we do not know: discord.py passes it through


def mistyped_option(data: Mapping[str, object]) -> tuple[str, object] | None:
    """The first option (name, value) of an application command's `data` whose JSON value
    does not fit the type it claims (a number that is not a number, a snowflake that is not
    digits, a missing value), sub-commands included; None when every option fits."""
    options = data.get("options", [])
    if not isinstance(options, list):
        return "options", options
    for option in options:  # pyright: ignore[reportUnknownVariableType]
        if not isinstance(option, Mapping):
            return "options", option  # pyright: ignore[reportUnknownVariableType]
        entry: Mapping[str, object] = option  # pyright: ignore[reportUnknownVariableType]
        name, kind = str(entry.get("name")), entry.get("type")
        if kind in (_SUB_COMMAND, _GROUP):
            found = mistyped_option(entry)
        elif "value" not in entry or not _fits(kind, entry["value"]):
            found = name, entry.get("value")
        else:
            found = None
        if found is not None:
            return found
    return None


def random_seed() -> int:
    """A fresh seed in the range users may type."""
    return random.randint(0, SEED_MAX)


def validate_pokemon(
    settings: Settings,
    prompt: str | None,
    *,
    negative: str | None = None,
    seed: int | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    size: str | None = None,
    count: int | None = None,
    translate: str | None = None,
    strength: float | None = None,
    has_image: bool = False,
    new_seed: Callable[[], int] = random_seed,
) -> GenerationRequest:
    """Check the options of one `/pokemon` call and build the request the worker will run.

    Missing options take the settings' defaults; a missing seed is drawn with `new_seed`.
    `has_image`: a source picture comes with the request (`image:`), which `strength` is for;
    the bot downloads and checks it later (`bot.sources`), after the interaction is deferred.
    Raises `UserFacingError` with a catalog key naming the first problem found.
    """
    text = text_option(prompt)
    if not text:
        raise UserFacingError("error.prompt_empty")
    if len(text) > MAX_PROMPT_CHARS:
        raise UserFacingError("error.prompt_too_long", length=len(text), max=MAX_PROMPT_CHARS)
    negative_text = text_option(negative)
    if len(negative_text) > MAX_NEGATIVE_CHARS:
        raise UserFacingError(
            "error.negative_too_long", length=len(negative_text), max=MAX_NEGATIVE_CHARS
        )

    max_steps = settings.pokemon_max_steps
    if steps is None:
        steps = min(settings.pokemon_steps, max_steps)
    steps = whole_number(steps, MIN_STEPS, max_steps, "error.steps_range")
    seed = whole_number(new_seed() if seed is None else seed, 0, SEED_MAX, "error.seed_range")
    if guidance is None:
        guidance = settings.pokemon_guidance
    guidance = real_number(guidance, MIN_GUIDANCE, MAX_GUIDANCE, "error.guidance_range")
    size = choice_option("square" if size is None else size, SIZES)
    width, height = size_dimensions(settings.pokemon_size, size)
    check_dimensions(settings, width, height)
    count = whole_number(1 if count is None else count, MIN_COUNT, MAX_COUNT, "error.count_range")
    translate = choice_option(
        settings.pokemon_translate if translate is None else translate, TRANSLATE_CHOICES
    )
    if strength is not None and not has_image:
        raise UserFacingError("error.strength_without_image")

    return GenerationRequest(
        prompt=text,
        negative_prompt=negative_text,
        seed=seed,
        steps=steps,
        guidance=guidance,
        height=height,
        width=width,
        scheduler=settings.pokemon_scheduler,
        translate=translate == "auto",
        strength=check_strength(VARY_STRONG if strength is None else strength, steps)
        if has_image
        else 0.0,
        count=count,
    )


def choice_option(value: object, choices: tuple[str, ...]) -> str:
    """One of `choices` (a client that ignores the declared choices may send anything)."""
    if not isinstance(value, str) or value not in choices:
        raise UserFacingError("error.invalid_option", value=shown(value))
    return value


def check_dimensions(settings: Settings, width: object, height: object) -> None:
    """A picture size the model can draw (multiples of 8) within POKEMON_MAX_PIXELS; the
    values may come from a stored job, so their types are checked too."""
    sides = (width, height)
    if not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 8 and not v % 8 for v in sides
    ):
        raise UserFacingError("error.invalid_option", value=shown(sides))
    assert isinstance(width, int)
    assert isinstance(height, int)
    if width * height > settings.pokemon_max_pixels:
        raise UserFacingError(
            "error.size_too_large", width=width, height=height, max=settings.pokemon_max_pixels
        )


def check_strength(value: object, steps: int) -> float:
    """An image-to-image strength in 0.1-0.9 that runs at least one denoising step at `steps`
    (the engine runs `GenerationRequest.denoising_steps()`, `int(steps * strength)`)."""
    strength = real_number(value, MIN_STRENGTH, MAX_STRENGTH, "error.strength_range")
    if min(int(steps * strength), steps) < 1:
        raise UserFacingError("error.strength_steps", steps=steps, strength=f"{strength:g}")
    return strength


def check_request(
    settings: Settings, request: GenerationRequest, *, source_coming: bool = False
) -> GenerationRequest:
    """Check a request built earlier (a 🔁 of a stored job, a job resumed after a restart)
    against the settings in force now: an admin who lowered `POKEMON_MAX_STEPS` or
    `POKEMON_MAX_PIXELS` since is obeyed.

    The same rules as `/pokemon`'s options; every other field of the request is kept. An
    image-to-image request needs its source picture: `init_image`, or `source_coming` when the
    caller downloads it next; a stored one has none (the picture is never stored), so a job
    resumed after a restart is refused with `error.source_gone`.
    Raises `UserFacingError` naming the first problem.
    """
    has_image = request.is_img2img or source_coming
    if request.kind == UPSCALE:  # no prompt work: only its source picture matters
        if not has_image:
            raise UserFacingError("error.source_gone")
        return request
    if request.strength and not has_image:
        raise UserFacingError("error.source_gone")
    checked = validate_pokemon(
        settings,
        request.prompt,
        negative=request.negative_prompt,
        seed=request.seed,
        steps=request.steps,
        guidance=request.guidance,
        count=request.count,
        strength=request.strength if has_image else None,
        has_image=has_image,
    )
    check_dimensions(settings, request.width, request.height)
    return replace(
        request,
        prompt=checked.prompt,
        negative_prompt=checked.negative_prompt,
        strength=checked.strength,
    )
