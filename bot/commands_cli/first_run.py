"""The first `pokemon-bot run` in a fresh checkout: make `.env`, ask for the token, show the invite.

Only when no token is configured anywhere (environment or `.env`). `.env` is made from
`.env.example` when there is none. On a terminal the token is asked for with hidden input,
its format checked (the same check as `invite` and `doctor`), written to `.env` (readable by
its owner only), and the invite URL printed; without a terminal (a service, CI, a container)
nothing is asked and the caller stops with one line saying what to set.
"""

from __future__ import annotations

import getpass
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from bot.cli import CliError
from bot.commands_cli.invite import TokenError, application_id_from_token, invite_url, load_token

ENV_FILE = Path(".env")
EXAMPLE_FILE = Path(".env.example")
PROMPT = "Discord bot token (Developer Portal → your application → Bot → Reset Token; hidden): "
ATTEMPTS = 3
_TOKEN_LINE = re.compile(r"^\s*DISCORD_TOKEN\s*=.*$", re.MULTILINE)


def ensure_token(
    *,
    env_file: Path = ENV_FILE,
    example: Path = EXAMPLE_FILE,
    interactive: bool | None = None,
    ask: Callable[[str], str] = getpass.getpass,
    out: TextIO | None = None,
) -> None:
    """Make sure DISCORD_TOKEN is configured, asking for it on a terminal; CliError otherwise."""
    if load_token():
        return
    out = out or sys.stderr
    created = _create_env_file(env_file, example)
    if created:
        print(f"created {env_file.absolute()} from {example}", file=out)
    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stderr.isatty()
    if not interactive:
        raise CliError(
            f"DISCORD_TOKEN is not set; put the bot token in {env_file.absolute()} "
            "(DISCORD_TOKEN=...) or the environment"
        )
    for _ in range(ATTEMPTS):
        token = ask(PROMPT).strip()
        try:
            application_id = application_id_from_token(token)
        except TokenError as exc:
            print(str(exc), file=out)
            continue
        write_token(env_file, token)
        print(f"saved the token in {env_file.absolute()} (readable by you only)", file=out)
        print(f"invite the bot to your server: {invite_url(application_id)}", file=out)
        return
    raise CliError(f"no valid token after {ATTEMPTS} tries; set DISCORD_TOKEN in {env_file}")


def _create_env_file(env_file: Path, example: Path) -> bool:
    if env_file.exists():
        return False
    text = example.read_text("utf-8") if example.is_file() else "DISCORD_TOKEN=\n"
    _write_private(env_file, text)
    return True


def write_token(env_file: Path, token: str) -> None:
    """Set DISCORD_TOKEN in `env_file` (replacing its line, or adding one), owner-only."""
    text = env_file.read_text("utf-8") if env_file.is_file() else ""
    line = f"DISCORD_TOKEN={token}"
    if _TOKEN_LINE.search(text):
        text = _TOKEN_LINE.sub(lambda _: line, text, count=1)
    else:
        text = f"{text.rstrip()}\n{line}\n".lstrip()
    _write_private(env_file, text)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT
