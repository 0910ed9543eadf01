"""Ctrl-C while `run` starts: a stuck model load stops at once, and a second Ctrl-C during a
stop that hangs exits immediately (status 130). Real processes and real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"

# run_bot as `pokemon-bot run` calls it, with the model load (or the bot) replaced by one that
# never finishes: a download that hangs, a stop that hangs.
SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, threading
    from bot.app import run_bot
    from bot.logging_setup import setup_logging
    from bot.settings import Settings

    class StuckBot:
        exit_code = 0
        def __init__(self, **_): pass
        async def __aenter__(self): return self
        async def __aexit__(self, *_): return None
        async def start(self, token):
            print("bot started", file=sys.stderr, flush=True)
            await asyncio.Event().wait()
        def request_shutdown(self, code):
            print("shutdown requested (and ignored)", file=sys.stderr, flush=True)
        async def wait_shutdown(self): await asyncio.Event().wait()
        def is_ready(self): return True

    class Engine:
        device, dtype = "cpu", "float32"

    def stuck_load(settings):
        threading.Event().wait()

    setup_logging("INFO")
    stage = sys.argv[1]
    factory = stuck_load if stage == "load" else (lambda settings: Engine())
    sys.exit(asyncio.run(run_bot(Settings(), engine_factory=factory, bot_factory=StuckBot)))
    """
)


def start(tmp_path: Path, stage: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POKEMON_", "DISCORD_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        DISCORD_TOKEN=TOKEN,
        POKEMON_DB=str(tmp_path / "db.sqlite3"),
        POKEMON_DEVICE="cpu",
    )
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, stage],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def wait_for(process: subprocess.Popen[str], marker: str) -> list[str]:
    assert process.stderr is not None
    seen: list[str] = []
    for line in process.stderr:
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError(f"{marker!r} never appeared:\n{''.join(seen)}")


def test_ctrl_c_during_a_stuck_model_load_stops_without_waiting_for_it(tmp_path: Path) -> None:
    process = start(tmp_path, "load")
    try:
        wait_for(process, "loading model")
        process.send_signal(signal.SIGINT)
        status = process.wait(timeout=60)  # a hang guard: the load itself never ends
        rest = process.stderr.read() if process.stderr else ""
    finally:
        process.kill()
    assert status == 0
    assert "stopped while the model was loading" in rest
    assert "Traceback" not in rest


def test_second_ctrl_c_exits_at_once_when_the_stop_hangs(tmp_path: Path) -> None:
    process = start(tmp_path, "bot")
    try:
        wait_for(process, "bot started")
        process.send_signal(signal.SIGINT)
        wait_for(process, "shutdown requested (and ignored)")
        process.send_signal(signal.SIGINT)
        status = process.wait(timeout=60)
        rest = process.stderr.read() if process.stderr else ""
    finally:
        process.kill()
    assert status == 130
    assert "SIGINT again: exiting at once" in rest
