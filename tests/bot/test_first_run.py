"""The first `pokemon-bot run` on a terminal: `.env` from the example, the token asked for with
hidden input, its format checked, saved privately, and the invite URL printed."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

from bot.cli import CliError
from bot.commands_cli.first_run import PROMPT, ensure_token, write_token

ROOT = Path(__file__).resolve().parents[2]
APP_ID = 123456789012345678
TOKEN = (
    base64.b64encode(str(APP_ID).encode()).decode().rstrip("=") + ".GhIjKl.secretHmacPart0123456789"
)


@pytest.fixture
def fresh_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with `.env.example` and no `.env`, and no token in the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    (tmp_path / ".env.example").write_text((ROOT / ".env.example").read_text("utf-8"), "utf-8")
    return tmp_path


def test_terminal_asks_checks_saves_and_prints_the_invite(fresh_checkout: Path) -> None:
    answers = iter(["not-a-token", f"  {TOKEN}  "])
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    out = io.StringIO()
    ensure_token(interactive=True, ask=ask, out=out)

    assert prompts == [PROMPT, PROMPT]
    env = (fresh_checkout / ".env").read_text("utf-8")
    assert f"\nDISCORD_TOKEN={TOKEN}\n" in env
    assert env.count("DISCORD_TOKEN=") == 1
    assert "# POKEMON_DEVICE=auto" in env  # the rest of the example is kept
    assert (fresh_checkout / ".env").stat().st_mode & 0o777 == 0o600
    text = out.getvalue()
    assert "malformed" in text
    assert f"client_id={APP_ID}" in text
    assert TOKEN not in text
    # A second start reads the token from .env and asks nothing.
    ensure_token(interactive=True, ask=lambda _: pytest.fail("asked again"), out=out)


def test_three_bad_answers_stop_with_one_line(fresh_checkout: Path) -> None:
    with pytest.raises(CliError, match="no valid token after 3 tries"):
        ensure_token(interactive=True, ask=lambda _: "nope", out=io.StringIO())


def test_without_a_terminal_nothing_is_asked(fresh_checkout: Path) -> None:
    with pytest.raises(CliError, match=r"DISCORD_TOKEN is not set; put the bot token in .*\.env"):
        ensure_token(interactive=False, ask=lambda _: pytest.fail("asked"), out=io.StringIO())
    assert (fresh_checkout / ".env").is_file()


def test_a_token_in_the_environment_needs_no_env_file(
    fresh_checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    ensure_token(interactive=True, ask=lambda _: pytest.fail("asked"), out=io.StringIO())
    assert not (fresh_checkout / ".env").exists()


def test_write_token_replaces_the_line_or_adds_one(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("A=1\nDISCORD_TOKEN=old\nB=2\n", "utf-8")
    write_token(env, "new")
    assert env.read_text("utf-8") == "A=1\nDISCORD_TOKEN=new\nB=2\n"
    env.write_text("A=1", "utf-8")
    write_token(env, "x")
    assert env.read_text("utf-8") == "A=1\nDISCORD_TOKEN=x\n"
