"""`POKEMON_REDIS_URL` with a password and `rediss://` TLS, as a worker on another machine
would reach Redis: a real `redis-server` with TLS on a loopback port and `requirepass`, a real
`pokemon-bot worker` process, and the bot's `RemoteGenerator`; a wrong password is one line.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main as cli_main
from generation.generator import Done
from generation.remote import RemoteGenerator
from generation.types import GenerationRequest
from tests.redisprocs import Workers

PASSWORD = "correct-horse"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """redis-server listening only with TLS on 127.0.0.1, a password required."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server", "--port", "0", "--bind", "127.0.0.1",
            "--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
            "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
            "--requirepass", PASSWORD, "--save", "", "--dir", str(tmp_path),
        ],
        stdout=(tmp_path / "redis.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((tmp_path / "redis.log").read_text())
        time.sleep(0.05)
    yield port, cert
    proc.terminate()
    proc.wait(10)


async def test_a_job_runs_through_redis_over_tls_with_a_password(
    tls_redis: tuple[int, Path], tmp_path: Path
) -> None:
    port, cert = tls_redis
    url = f"rediss://:{PASSWORD}@127.0.0.1:{port}/0?ssl_ca_certs={cert}"
    workers = Workers(url, tmp_path)
    generator = RemoteGenerator(url, queue_size=4, refresh_interval=0.1, max_backoff=0.5)
    await generator.start()
    try:
        workers.start("tls-worker", model="fake:step=0.01")
        async with asyncio.timeout(60):
            while (await generator.status()).workers == 0:  # noqa: ASYNC110 (state in Redis)
                await asyncio.sleep(0.1)
        handle = await generator.submit(1, 10, GenerationRequest(prompt="tls", steps=2))
        async with asyncio.timeout(60):
            outcome = await handle.wait()
        assert isinstance(outcome, Done), workers.logs()
        assert outcome.result.images
    finally:
        await generator.stop(timeout=10)
        workers.stop_all()
    # The worker's log names this Redis (without the password), and never shows the password.
    log = workers.log("tls-worker")
    assert f"redis=rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}" in log
    assert PASSWORD not in log


def test_a_wrong_password_is_one_line(
    tls_redis: tuple[int, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, cert = tls_redis
    monkeypatch.setenv(
        "POKEMON_REDIS_URL", f"rediss://:Xq7-not-it@127.0.0.1:{port}/0?ssl_ca_certs={cert}"
    )
    assert cli_main(["workers"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pokemon-bot workers: ")
    assert "\n" not in err
    assert "Xq7-not-it" not in err  # the password is never printed
    assert "invalid username-password" in err
