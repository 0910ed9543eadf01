"""`pokemon-bot tokens "プロンプト"`: the 77 ids the text encoder sees, as JSON on stdout.

So a user can see why a long prompt was cut. Only the tokenizer is loaded (sentencepiece, no
torch, no model weights), so this answers in well under a second.
"""

from __future__ import annotations

import argparse
import json

from pydantic import ValidationError

from bot.cli import CliError
from bot.commands_cli.run import settings_error_line
from bot.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `tokens`."""
    parser.add_argument("prompt", help="the prompt to tokenize")
    parser.add_argument("--model", default=None, help="Hub id or local folder (POKEMON_MODEL)")


def main(args: argparse.Namespace) -> int:
    """Print `{"ids": [...], "count": N, "truncated": bool}` for the prompt."""
    from generation.errors import ModelLoadError
    from generation.loader import load_tokenizer

    model = args.model
    if model is None:
        try:
            model = Settings().pokemon_model
        except ValidationError as exc:
            raise CliError(f"invalid setting {settings_error_line(exc)}") from None
    try:
        tokenizer = load_tokenizer(model)
    except ModelLoadError as exc:
        raise CliError(str(exc)) from exc
    encoded = tokenizer.encode(args.prompt)
    print(
        json.dumps(
            {"ids": list(encoded.ids), "count": encoded.count, "truncated": encoded.truncated}
        )
    )
    return 0
