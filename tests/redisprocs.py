"""Real processes for the remote-generation tests and `bench/scale.py`: a `redis-server` on a
unix socket in a temporary folder (append-only on), and `pokemon-bot worker` subprocesses."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 20.0


class RedisServer:
    """`redis-server` on a unix socket in its own folder; restartable on the same data."""

    def __init__(self, folder: Path | None = None) -> None:
        # Unix socket paths are limited to ~100 bytes: a short folder under /tmp.
        self.folder = folder or Path(tempfile.mkdtemp(prefix="redis-", dir="/tmp"))
        self.socket = self.folder / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.socket.unlink(missing_ok=True)
        command = [
            "redis-server",
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.folder),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            command,
            stdout=(self.folder / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {self.log()[-2000:]}")
            time.sleep(0.02)

    def _ready(self) -> bool:
        if not self.socket.exists():
            return False
        reply = subprocess.run(
            ["redis-cli", "-s", str(self.socket), "ping"], capture_output=True, check=False
        )
        return reply.stdout.strip() == b"PONG"

    def stop(self) -> None:
        """A clean shutdown (SIGTERM: the append-only file is flushed)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.folder / "redis.log"
        return path.read_text("utf-8", "replace") if path.exists() else ""

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class Workers:
    """`pokemon-bot worker` subprocesses against one Redis, each logging to its own file."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url = url
        self.folder = folder
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self,
        name: str,
        *,
        model: str = "fake:step=0.02",
        max_batch: int = 2,
        reclaim_idle: float = 1.0,
        max_attempts: int = 3,
        heartbeat: float = 0.2,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "POKEMON_REDIS_URL": self.url,
            "POKEMON_LOG_LEVEL": "INFO",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONPATH": str(ROOT),
            **(extra_env or {}),
        }
        command = [
            sys.executable, "-m", "bot", "worker",
            "--name", name,
            "--model", model,
            "--device", "cpu",
            "--max-batch", str(max_batch),
            "--reclaim-idle", str(reclaim_idle),
            "--max-attempts", str(max_attempts),
            "--heartbeat", str(heartbeat),
        ]  # fmt: skip
        log = (self.folder / f"worker-{name}.log").open("ab")
        # cwd: a folder without a .env, so only the environment above configures it.
        proc = subprocess.Popen(command, env=env, cwd=self.folder, stdout=log, stderr=log)
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        """kill -9: no clean-up, no last heartbeat, entries left pending."""
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def terminate(self, name: str, timeout: float = 30.0) -> int:
        proc = self.procs[name]
        proc.terminate()
        return proc.wait(timeout)

    def log(self, name: str) -> str:
        return (self.folder / f"worker-{name}.log").read_text("utf-8", "replace")

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.log(name)}" for name in self.procs)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
