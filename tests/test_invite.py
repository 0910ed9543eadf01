"""`pokemon-bot invite`: the permission integer, the application id from a token, one-line errors."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.commands_cli.invite import (
    TokenError,
    application_id_from_token,
    invite_url,
    parse_application_id,
    required_permissions,
)

ROOT = Path(__file__).resolve().parents[1]
APP_ID = 1234567890123456789


def make_token(
    application_id: int | str, secret: str = "hmacPartThatIsSecret_0123456789abc"
) -> str:
    """A well-formed (fake) bot token: base64 id, timestamp part, HMAC part."""
    first = base64.b64encode(str(application_id).encode()).decode().rstrip("=")
    return f"{first}.GQx7Yw.{secret}"


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot ...` in a clean environment, from a folder with no `.env` unless a test writes one."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POKEMON_", "DISCORD_")) and k != "PYTHONPATH"
    }
    clean.update(PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8", **env)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_permission_integer_matches_discords_documented_bits() -> None:
    # Bit positions from Discord's documentation (Topics → Permissions), not from discord.py.
    documented = {
        "ADD_REACTIONS": 1 << 6,
        "VIEW_CHANNEL": 1 << 10,
        "SEND_MESSAGES": 1 << 11,
        "MANAGE_MESSAGES": 1 << 13,
        "EMBED_LINKS": 1 << 14,
        "ATTACH_FILES": 1 << 15,
        "READ_MESSAGE_HISTORY": 1 << 16,
    }
    assert required_permissions().value == sum(documented.values()) == 126016


def test_invite_url_has_client_id_both_scopes_and_permissions() -> None:
    assert invite_url(APP_ID) == (
        "https://discord.com/oauth2/authorize?client_id=1234567890123456789"
        "&scope=bot+applications.commands&permissions=126016"
    )


@pytest.mark.parametrize("application_id", [APP_ID, 123456789012345678, 80351110224678912])
def test_application_id_is_read_from_the_tokens_first_part(application_id: int) -> None:
    assert application_id_from_token(make_token(application_id)) == application_id


def test_application_id_is_read_from_a_token_with_surrounding_whitespace() -> None:
    assert application_id_from_token(f"  {make_token(APP_ID)}\n") == APP_ID


@pytest.mark.parametrize(
    ("token", "says"),
    [
        ("", "empty"),
        (f"Bot {make_token(APP_ID)}", "'Bot '"),
        (f'"{make_token(APP_ID)}"', "quotes"),
        ("k" * 32, "client secret"),
        ("only.two", "three dot-separated parts"),
        ("a.b.c.d", "three dot-separated parts"),
        ("has space.GQx7Yw.secretsecret", "three dot-separated parts"),
        (make_token("hello-not-a-number"), "application id"),
        (make_token("12345"), "application id"),
        ("!!!!.GQx7Yw.secretsecret", "three dot-separated parts"),
    ],
)
def test_malformed_token_is_one_line_that_never_echoes_it(token: str, says: str) -> None:
    with pytest.raises(TokenError) as caught:
        application_id_from_token(token)
    message = str(caught.value)
    assert says in message
    assert "\n" not in message
    if token.strip():
        assert token.strip() not in message


@pytest.mark.parametrize("text", ["abc", "-5", "0", "12", "1234567890123456789012"])
def test_application_id_option_must_be_a_snowflake(text: str) -> None:
    with pytest.raises(TokenError, match="not an application id"):
        parse_application_id(text)


def test_cli_prints_the_url_for_the_token_in_the_environment(tmp_path: Path) -> None:
    token = make_token(APP_ID)
    result = run_cli(tmp_path, "invite", DISCORD_TOKEN=token)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == invite_url(APP_ID)
    assert token not in result.stdout + result.stderr


def test_cli_reads_the_token_from_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"DISCORD_TOKEN={make_token(APP_ID)}\n", "utf-8")
    result = run_cli(tmp_path, "invite")
    assert result.returncode == 0, result.stderr
    assert f"client_id={APP_ID}&" in result.stdout


def test_cli_application_id_option_needs_no_token(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "invite", "--application-id", "80351110224678912")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == invite_url(80351110224678912)


def test_cli_bad_token_is_one_line_on_stderr_and_exit_2(tmp_path: Path) -> None:
    token = "Zm9vYmFy.GQx7Yw.superSecretHmacValue123456"
    result = run_cli(tmp_path, "invite", DISCORD_TOKEN=token)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pokemon-bot invite: DISCORD_TOKEN is malformed")
    assert "superSecretHmacValue" not in result.stderr


def test_cli_missing_token_says_how_to_fix_it(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "invite")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "pokemon-bot invite: DISCORD_TOKEN is not set; put it in .env or pass --application-id ID"
    )
