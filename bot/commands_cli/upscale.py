"""`pokemon-bot upscale in.png -o out.png`: one picture 4x larger, no Discord.

The same upscaler the bot uses (POKEMON_UPSCALER, POKEMON_DEVICE, or --upscaler / --device):
the weights are fetched once and checked as for the bot, the picture is tiled when memory asks
for it, the `parameters` text is kept with the upscale step added, and a result whose PNG would
pass Discord's 10 MB is written as lossless WebP or JPEG, as the bot would send it (the file's
extension then says so). torch is imported only once the input is known to be good.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from pydantic import ValidationError

from bot.cli import CliError
from bot.commands_cli.generate import run_with_bar
from bot.commands_cli.run import settings_error_line
from bot.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="the picture to upscale: PNG, JPEG or WebP")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="PNG file to write (default INPUT-4x.png beside the input); a result whose PNG "
        "would pass Discord's 10 MB is written beside it as .webp or .jpg instead",
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite the output file if it exists"
    )
    parser.add_argument(
        "--upscaler",
        default=None,
        help="Hub file (owner/name/file.pth), local file or folder (POKEMON_UPSCALER)",
    )
    parser.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (POKEMON_DEVICE)")
    parser.add_argument(
        "--tile",
        type=int,
        default=None,
        help="input pixels per tile side (default: whole on CUDA, smaller tiles if memory runs "
        "out; 256 on the CPU)",
    )


def read_input(path: Path) -> bytes:
    """The input's bytes, checked as the bot checks an upload (one CliError line if not)."""
    from generation.images import BadInputImageError, check_image_bytes
    from generation.upscale import check_source_size

    if not path.exists():
        raise CliError(f"{path} does not exist")
    if path.is_dir():
        raise CliError(f"{path} is a folder; give a picture file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        _, width, height = check_image_bytes(data)
        check_source_size(width, height)
    except BadInputImageError as exc:
        raise CliError(f"{path}: {exc}") from exc
    return data


def check_output(output: Path, *, force: bool) -> Path:
    if output.is_dir():
        raise CliError(f"{output} is a folder; give a file name for the picture")
    if output.suffix.lower() != ".png":
        raise CliError(
            f"cannot write {output.name}: give a .png file name (not "
            f"{output.suffix or 'no extension'}); past Discord's 10 MB the picture is written "
            "as .webp or .jpg beside it"
        )
    if not output.parent.exists():
        raise CliError(f"folder {output.parent} does not exist")
    if output.exists() and not force:
        raise CliError(f"{output} already exists; choose another name or pass --force")
    return output


def main(args: argparse.Namespace) -> int:
    """Load the upscaler, upscale one picture, write it; 0 on success, 1 when none came out."""
    try:
        settings = Settings()
    except ValidationError as exc:
        raise CliError(f"invalid setting {settings_error_line(exc)}") from None
    if args.tile is not None and args.tile < 8:
        raise CliError(f"--tile must be at least 8 pixels, not {args.tile}")
    data = read_input(args.input)
    output = check_output(
        args.output or args.input.with_name(f"{args.input.stem}-4x.png"), force=args.force
    )
    source = (args.upscaler or settings.pokemon_upscaler).strip()
    device = args.device or settings.pokemon_device

    from bot.logging_setup import setup_logging

    setup_logging("WARNING")
    logging.getLogger("generation").setLevel(logging.INFO)  # download progress

    from generation.errors import ModelLoadError
    from generation.upscale import load_upscaler
    from generation.upscale_weights import UpscalerLoadError, parse_upscaler

    try:
        if parse_upscaler(source) is None:
            raise CliError("the upscaler is off (POKEMON_UPSCALER=off); pass --upscaler to use one")
    except UpscalerLoadError as exc:
        raise CliError(str(exc)) from exc
    started = time.monotonic()
    try:
        upscaler = load_upscaler(source, device=device)
    except ModelLoadError as exc:
        raise CliError(str(exc)) from exc
    load_s = time.monotonic() - started

    done = run_with_bar(
        lambda bar: upscaler.upscale([data], on_tile=bar, tile=args.tile or "auto")[0],
        failed="upscale failed",
        nothing="pokemon-bot upscale: no picture",
        unit="tiles",
    )
    if done is None:
        return 1
    result, run_s = done
    written = output.with_suffix(result.extension)
    if written != output and written.exists() and not args.force:
        raise CliError(f"{written} already exists; choose another name or pass --force")
    try:
        written.write_bytes(result.data)
    except OSError as exc:
        raise CliError(f"cannot write {written}: {exc.strerror or exc}") from exc
    note = ""
    if result.format != "png":
        quality = f" quality {result.quality}" if result.quality is not None else ""
        note = (
            f" as {result.format.upper()}{quality}: the PNG would be "
            f"{result.png_bytes / 1e6:.1f} MB, over Discord's limit"
        )
    print(
        f"wrote {written}: {result.source_width}x{result.source_height} -> "
        f"{result.width}x{result.height} with {upscaler.name} on {upscaler.device} "
        f"({result.tiles} tile{'s' if result.tiles != 1 else ''}), {run_s:.1f}s "
        f"(load {load_s:.1f}s){note}"
    )
    return 0
