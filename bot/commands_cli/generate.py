"""`pokemon-bot generate "プロンプト" -o out.png`: one image, no Discord.

The way to check a GPU and a model before going live: it loads the model exactly as the bot
does (same loader, same Engine), shows a progress bar on stderr, writes the PNG and prints the
seed and timings. Defaults come from the same settings as the bot (POKEMON_MODEL, POKEMON_STEPS,
POKEMON_SIZE, ...). torch is imported only once the arguments are known to be good.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import logging
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar

from pydantic import ValidationError

from bot.cli import CliError
from bot.commands_cli.run import settings_error_line
from bot.settings import Settings
from generation.types import SCHEDULERS, GenerationRequest

if TYPE_CHECKING:
    from generation.errors import GenerationError

T = TypeVar("T")

SEED_MAX = 2**32 - 1
STEPS_RANGE = (1, 150)
GUIDANCE_RANGE = (1.0, 20.0)
SIZE_RANGE = (64, 1024)
BAR_WIDTH = 30
# The formats `generate` writes, by the output's extension (Pillow's format names).
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `generate`; a missing one takes the settings' default."""
    parser.add_argument("prompt", help="the prompt, in Japanese")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="image file to write: .png, .jpg or .webp (default pokemon-SEED.png)",
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite the output file if it exists"
    )
    parser.add_argument("--model", default=None, help="Hub id or local folder (POKEMON_MODEL)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (POKEMON_DEVICE)")
    parser.add_argument("--seed", type=int, default=None, help="0..2^32-1; random when left out")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (POKEMON_STEPS)")
    parser.add_argument(
        "--guidance", type=float, default=None, help="classifier-free guidance (POKEMON_GUIDANCE)"
    )
    parser.add_argument("--negative", default="", help="negative prompt")
    parser.add_argument(
        "--height",
        type=int,
        default=None,
        help="pixels, multiple of 8 (default POKEMON_SIZE if set, else the model's native size)",
    )
    parser.add_argument(
        "--width", type=int, default=None, help="pixels, multiple of 8 (as --height)"
    )
    parser.add_argument(
        "--scheduler", choices=SCHEDULERS, default=None, help="sampler (POKEMON_SCHEDULER)"
    )
    parser.add_argument(
        "--safety-checker",
        choices=("on", "off"),
        default=None,
        help="check the image for NSFW content (POKEMON_SAFETY_CHECKER)",
    )


def build_request(args: argparse.Namespace, settings: Settings) -> GenerationRequest:
    """Validate the options into a request; every problem is one CliError line."""
    prompt = (args.prompt or "").strip()
    if not prompt:
        raise CliError("the prompt is empty")
    seed = random.randint(0, SEED_MAX) if args.seed is None else args.seed
    if not 0 <= seed <= SEED_MAX:
        raise CliError(f"--seed must be between 0 and {SEED_MAX}, not {seed}")
    steps = settings.pokemon_steps if args.steps is None else args.steps
    if not STEPS_RANGE[0] <= steps <= STEPS_RANGE[1]:
        raise CliError(
            f"--steps must be between {STEPS_RANGE[0]} and {STEPS_RANGE[1]}, not {steps}"
        )
    guidance = settings.pokemon_guidance if args.guidance is None else args.guidance
    if not GUIDANCE_RANGE[0] <= guidance <= GUIDANCE_RANGE[1]:
        raise CliError(
            f"--guidance must be between {GUIDANCE_RANGE[0]:g} and {GUIDANCE_RANGE[1]:g}, "
            f"not {guidance:g}"
        )
    sizes: dict[str, int] = {}
    for name in ("height", "width"):
        value = getattr(args, name)
        value = settings.pokemon_size if value is None else value
        if value % 8 or not SIZE_RANGE[0] <= value <= SIZE_RANGE[1]:
            raise CliError(
                f"--{name} must be a multiple of 8 between {SIZE_RANGE[0]} and {SIZE_RANGE[1]}, "
                f"not {value}"
            )
        sizes[name] = value
    return GenerationRequest(
        prompt=prompt,
        negative_prompt=(args.negative or "").strip(),
        seed=seed,
        steps=steps,
        guidance=guidance,
        height=sizes["height"],
        width=sizes["width"],
        scheduler=args.scheduler or settings.pokemon_scheduler,
    )


def check_output(output: Path, *, force: bool) -> Path:
    """The file to write, refused (one CliError line) before anything slow when it cannot be."""
    if output.is_dir():
        raise CliError(f"{output} is a folder; give a file name for the image")
    if output.suffix.lower() not in FORMATS:
        raise CliError(
            f"cannot write {output.name}: use a .png, .jpg or .webp file name "
            f"(not {output.suffix or 'no extension'})"
        )
    if not output.parent.exists():
        raise CliError(f"folder {output.parent} does not exist")
    if output.exists() and not force:
        raise CliError(f"{output} already exists; choose another name or pass --force")
    return output


def encode(png: bytes, output: Path) -> bytes:
    """The image in the format `output`'s extension names (the pipeline makes PNG)."""
    form = FORMATS[output.suffix.lower()]
    if form == "PNG":
        return png
    from PIL import Image

    buffer = io.BytesIO()
    with Image.open(io.BytesIO(png)) as image:
        image.convert("RGB").save(buffer, format=form, quality=95)
    return buffer.getvalue()


def _native_size_unless_given(
    request: GenerationRequest, args: argparse.Namespace, settings: Settings, native: int | None
) -> GenerationRequest:
    """With no --height/--width and no POKEMON_SIZE set, the size the checkpoint was made for
    (in the range `generate` accepts): the tiny test model draws 64², the real one 512²."""
    given = args.height is not None or args.width is not None
    if given or "pokemon_size" in settings.model_fields_set or native is None:
        return request
    side = min(max(native - native % 8, SIZE_RANGE[0]), SIZE_RANGE[1])
    return dataclasses.replace(request, height=side, width=side)


class ProgressBar:
    """A one-line text bar on stderr, redrawn after each denoising step (or tile: `unit`)."""

    def __init__(self, stream: TextIO, *, unit: str = "steps") -> None:
        self.stream = stream
        self.unit = unit
        self.started = time.monotonic()
        self.drawn = False

    def __call__(self, step: int, total: int, _peek: object = None) -> None:
        done = int(BAR_WIDTH * step / max(total, 1))
        bar = "#" * done + "-" * (BAR_WIDTH - done)
        elapsed = time.monotonic() - self.started
        self.stream.write(f"\r[{bar}] {step}/{total} {self.unit} {elapsed:.1f}s")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def run_with_bar(
    work: Callable[[ProgressBar], T | GenerationError],
    *,
    failed: str,
    nothing: str,
    unit: str = "steps",
) -> tuple[T, float] | None:
    """`work(bar)` with a progress bar on stderr → (its result, seconds it took).

    A failure of the whole call (out of memory, the device) is one CliError line after `failed`;
    a result that is itself an error is said on stderr after `nothing`, and gives None (exit 1).
    """
    from generation.errors import GenerationError

    bar = ProgressBar(sys.stderr, unit=unit)
    started = time.monotonic()
    try:
        result = work(bar)
    except GenerationError as exc:  # out of memory, or the device failed
        raise CliError(f"{failed}: {exc}") from exc
    finally:
        bar.close()
    if isinstance(result, GenerationError):
        print(f"{nothing} ({result.code}): {result}", file=sys.stderr)
        return None
    return result, time.monotonic() - started


def main(args: argparse.Namespace) -> int:
    """Load the model, make one image, write it; 0 on success, 1 when no image came out."""
    try:
        settings = Settings()
    except ValidationError as exc:
        raise CliError(f"invalid setting {settings_error_line(exc)}") from None
    request = build_request(args, settings)
    output = check_output(args.output or Path(f"pokemon-{request.seed}.png"), force=args.force)
    safety = (args.safety_checker or settings.pokemon_safety_checker) == "on"
    model = args.model or settings.pokemon_model
    device = args.device or settings.pokemon_device

    from bot.logging_setup import setup_logging

    setup_logging("WARNING")
    logging.getLogger("generation").setLevel(logging.INFO)  # load and download progress

    from generation.errors import ModelLoadError
    from generation.loader import load_engine, native_size, resolve_model

    started = time.monotonic()
    try:
        folder = resolve_model(model)  # fails fast, before torch is imported
        request = _native_size_unless_given(request, args, settings, native_size(folder))
        print(f"loading {model} ...", file=sys.stderr)
        engine = load_engine(folder, device=device, safety_checker=safety)
    except ModelLoadError as exc:
        raise CliError(str(exc)) from exc
    load_s = time.monotonic() - started
    print(
        f"loaded on {engine.device} ({engine.dtype}) in {load_s:.1f}s; seed {request.seed}",
        file=sys.stderr,
    )

    done = run_with_bar(
        lambda bar: engine.generate([request], on_step=bar)[0],
        failed="generation failed",
        nothing="pokemon-bot generate: no image",
    )
    if done is None:
        return 1
    result, run_s = done
    try:
        output.write_bytes(encode(result.png, output))
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from exc
    note = " (prompt cut to 77 tokens)" if result.truncated else ""
    print(
        f"wrote {output}: seed {result.seed}, {result.steps} steps, "
        f"{result.width}x{result.height}, {run_s:.1f}s (model load {load_s:.1f}s){note}"
    )
    return 0
