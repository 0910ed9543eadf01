"""`pokemon-bot` (also `python -m bot`): run the bot, or one of its offline tools.

Each subcommand lives in its own module under `bot/commands_cli/` with `add_arguments(parser)`
and `main(args) -> int`, imported only when chosen so that `pokemon-bot tokens` never loads
discord.py and `pokemon-bot backup` never loads torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("bot.commands_cli.run", "run the Discord bot (the default)"),
    "generate": ("bot.commands_cli.generate", "make one image, no Discord"),
    "upscale": ("bot.commands_cli.upscale", "make one picture 4x larger, no Discord"),
    "tokens": ("bot.commands_cli.tokens", "show how a prompt is tokenized"),
    "translate": ("bot.commands_cli.translate", "show the Japanese an English prompt becomes"),
    "doctor": ("bot.commands_cli.doctor", "check settings, model, device and database"),
    "invite": ("bot.commands_cli.invite", "print the URL that adds the bot to a server"),
    "backup": ("bot.commands_cli.backup", "online backup of the database, then an integrity check"),
    "forget-user": ("bot.commands_cli.forget_user", "delete one user's data (as /privacy does)"),
    "worker": ("bot.commands_cli.worker", "serve generation jobs from Redis on this GPU"),
    "workers": ("bot.commands_cli.workers", "list the generation workers online in Redis"),
}


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def build_parser(modules: dict[str, object]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pokemon-bot",
        description="Discord bot for Pokémon-style pictures from Japanese prompts.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        module = modules.get(name)
        if module is not None:
            module.add_arguments(p)  # type: ignore[attr-defined]
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in {"-h", "--help"}):
        argv = ["run", *argv]
    chosen = argv[0] if argv[0] in SUBCOMMANDS else None
    modules: dict[str, object] = {}
    if chosen is not None:
        modules[chosen] = importlib.import_module(SUBCOMMANDS[chosen][0])
    parser = build_parser(modules)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = modules[args.command]
    try:
        return int(module.main(args) or 0)  # type: ignore[attr-defined]
    except CliError as exc:
        print(f"pokemon-bot {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
