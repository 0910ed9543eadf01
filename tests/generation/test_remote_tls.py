"""`POKEMON_REDIS_URL` with a password and `rediss://` TLS, as a worker on another machine
would reach Redis: a real `redis-server` with TLS on a loopback port and `requirepass`, a real
`pokemon-bot worker` process, and the bot's `RemoteGenerator`; a wrong password is one line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main as cli_main
from generation.generator import Done
from generation.remote import RemoteGenerator
from generation.types import GenerationRequest
from tests.redisprocs import TlsRedis, Workers

PASSWORD = "correct-horse"


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """Redis on 127.0.0.1 reached only over TLS, a password required (tests/redisprocs.py:
    the server's own TLS, or a TLS proxy in front of a Redis built without it); its port and
    the file of the CA that signed its certificate."""
    server = TlsRedis(tmp_path, PASSWORD)
    server.start()
    yield server.port, server.ca_file
    server.stop()


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
