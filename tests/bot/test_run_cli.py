"""`pokemon-bot run` start-up failures: one clear line, a non-zero exit, no traceback, no token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"


def run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN" and not k.startswith("POKEMON_")
    }
    clean.update(HF_HUB_OFFLINE="1", POKEMON_DB=str(tmp_path / "db.sqlite3"), **env)
    return subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,  # no .env there
        env={**clean, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,  # no terminal: nothing is asked
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_missing_token_without_a_terminal_makes_env_and_says_what_to_set(tmp_path: Path) -> None:
    done = run(tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"created {tmp_path / '.env'} from .env.example",
        f"pokemon-bot run: DISCORD_TOKEN is not set; put the bot token in {tmp_path / '.env'} "
        "(DISCORD_TOKEN=...) or the environment",
    ]
    assert (tmp_path / ".env").read_text("utf-8") == "DISCORD_TOKEN=\n"


def test_env_made_from_the_example_when_there_is_one(tmp_path: Path) -> None:
    (tmp_path / ".env.example").write_text((ROOT / ".env.example").read_text("utf-8"), "utf-8")
    done = run(tmp_path)
    assert done.returncode == 2
    assert (tmp_path / ".env").read_text("utf-8") == (ROOT / ".env.example").read_text("utf-8")
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0, ".env must be private"


def test_malformed_token_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    done = run(tmp_path, DISCORD_TOKEN="Bot abc.def.ghi", POKEMON_MODEL=str(tmp_path / "none"))
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("pokemon-bot run: DISCORD_TOKEN starts with 'Bot '")
    assert "loading model" not in done.stderr


def test_bad_setting_names_the_variable(tmp_path: Path) -> None:
    done = run(tmp_path, DISCORD_TOKEN=TOKEN, POKEMON_STEPS="many")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("pokemon-bot run: POKEMON_STEPS:")
    assert "Traceback" not in done.stderr


def test_model_that_will_not_load_fails_before_connecting_without_leaking_the_token(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no-such-model"
    done = run(tmp_path, DISCORD_TOKEN=TOKEN, POKEMON_MODEL=str(missing), POKEMON_DEVICE="cpu")
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"pokemon-bot run: model {missing}:")
    assert "Traceback" not in done.stderr
    assert TOKEN not in done.stderr + done.stdout
    assert "loading model" in done.stderr  # logging was set up, with the thread name
    assert "[MainThread]" in done.stderr
