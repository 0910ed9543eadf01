"""`pokemon-bot translate "a fire dragon"`: the Japanese the model would be given, on stdout.

The same rule and model as the bot's (POKEMON_TRANSLATE, POKEMON_TRANSLATE_MODEL,
POKEMON_TRANSLATE_DEVICE): text with any Japanese character, or with no Latin letter, is printed
unchanged. stderr says what happened and how many of the text encoder's 77 tokens the result
takes. Only the translation model and the prompt tokenizer are loaded, never the image model.
"""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from bot.cli import CliError
from bot.commands_cli.run import settings_error_line
from bot.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `translate`."""
    parser.add_argument("prompt", help="the prompt, in English")
    parser.add_argument(
        "--translate-model",
        default=None,
        help="Hub id or local folder of the translation model (POKEMON_TRANSLATE_MODEL)",
    )
    parser.add_argument(
        "--device", default=None, help="cpu, cuda or cuda:N (POKEMON_TRANSLATE_DEVICE)"
    )
    parser.add_argument(
        "--model",
        default=None,
        help="the image model whose tokenizer counts the tokens (POKEMON_MODEL)",
    )


def main(args: argparse.Namespace) -> int:
    """Print the text the tokenizer would get; 0, or a one-line error when the model fails."""
    try:
        settings = Settings()
    except ValidationError as exc:
        raise CliError(f"invalid setting {settings_error_line(exc)}") from None
    prompt = (args.prompt or "").strip()
    if not prompt:
        raise CliError("the prompt is empty")

    from bot.logging_setup import setup_logging

    setup_logging("WARNING")

    from generation.errors import ModelLoadError
    from generation.translate import has_japanese, load_translator, needs_translation

    source = args.translate_model or settings.pokemon_translate_model
    if settings.pokemon_translate == "off" and args.translate_model is None:
        text, note = prompt, "left as is: POKEMON_TRANSLATE is off"
    elif not needs_translation(prompt):
        why = "it has Japanese characters" if has_japanese(prompt) else "it has no Latin letters"
        text, note = prompt, f"left as is: {why}"
    else:
        try:
            translator = load_translator(
                source, device=args.device or settings.pokemon_translate_device
            )
        except ModelLoadError as exc:
            raise CliError(str(exc)) from exc
        text = translator.translate(prompt) or prompt
        note = f"translated from English by {source}"
    print(text)
    print(f"{note}; {_token_note(text, args.model or settings.pokemon_model)}", file=sys.stderr)
    return 0


def _token_note(text: str, model: str) -> str:
    from generation.errors import ModelLoadError
    from generation.loader import load_tokenizer

    try:
        encoded = load_tokenizer(model).encode(text)
    except ModelLoadError as exc:
        return f"token count unavailable ({exc})"
    cut = ", cut to 77" if encoded.truncated else ""
    return f"{encoded.count} of 77 tokens{cut}"
