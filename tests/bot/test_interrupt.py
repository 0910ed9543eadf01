"""Ctrl-C while `run` starts: a model load still downloading stops at once, and a second Ctrl-C
during a stop that hangs exits immediately (status 130). Real processes and real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"

# run_bot as `pokemon-bot run` calls it, with the model load (or the bot) replaced by one that
# takes long: a first download, a stop that hangs. The load fetches files as huggingface_hub's
# snapshot_download does, on a ThreadPoolExecutor; at interpreter exit concurrent.futures joins
# its threads, and they would first drain every queued download (here 12 s).
SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, time
    from concurrent.futures import ThreadPoolExecutor
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

    def downloading_load(settings):
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(time.sleep, [2.0] * 12))
        print("load finished", file=sys.stderr, flush=True)
        return Engine()

    setup_logging("INFO")
    stage = sys.argv[1]
    factory = downloading_load if stage == "load" else (lambda settings: Engine())
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


def test_ctrl_c_during_a_model_download_stops_without_waiting_for_it(tmp_path: Path) -> None:
    process = start(tmp_path, "load")
    try:
        wait_for(process, "loading model")
        process.send_signal(signal.SIGINT)
        sent = time.monotonic()
        status = process.wait(timeout=60)  # a hang guard
        took = time.monotonic() - sent
        rest = process.stderr.read() if process.stderr else ""
    finally:
        process.kill()
    assert status == 0, rest
    assert "stopped while the model was loading" in rest
    assert "Traceback" not in rest
    assert "load finished" not in rest
    # Well under the 12 s the download pool would take to drain.
    assert took < 5, f"exited {took:.1f} s after SIGINT:\n{rest}"


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
