"""discord.py's "voice will NOT be supported" warnings (PyNaCl, davey) never reach the log: the
bot has no voice features. In a subprocess, because discord.py warns once per process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CODE = """
import io, logging, discord
from bot.logging_setup import setup_logging
stream = io.StringIO()
setup_logging("INFO", stream=stream)
logging.getLogger("discord.client").warning("a real discord.py warning")
discord.Client(intents=discord.Intents.default())
print(stream.getvalue())
"""


def test_voice_support_warnings_are_silenced_and_others_kept() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CODE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "a real discord.py warning" in done.stdout
    assert "voice will NOT be supported" not in done.stdout + done.stderr
