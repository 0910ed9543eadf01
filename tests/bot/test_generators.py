"""`make_remote_generator`: Redis workers with POKEMON_REDIS_URL, the bot's own model without."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bot.generators import is_remote, make_remote_generator, start_metrics
from bot.settings import Settings
from generation.remote import RemoteGenerator


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)  # no .env
    for name in ("POKEMON_REDIS_URL", "POKEMON_METRICS_PORT"):
        monkeypatch.delenv(name, raising=False)
    return Settings


def test_without_redis_the_bot_keeps_its_own_model(settings: Any) -> None:
    chosen = settings()
    assert not is_remote(chosen)
    assert make_remote_generator(chosen) is None
    assert start_metrics(chosen) is False  # metrics are off by default


def test_with_redis_the_bot_gets_a_remote_generator(settings: Any) -> None:
    chosen = settings(pokemon_redis_url="redis://:secret@redis:6379/0", pokemon_queue_size=7)
    generator = make_remote_generator(chosen)
    assert isinstance(generator, RemoteGenerator)
    assert is_remote(chosen)
    assert "secret" not in repr(chosen.pokemon_redis_url)
    assert "secret" not in str(chosen)


def test_the_redis_prefix_is_one_plain_word(settings: Any) -> None:
    assert settings().pokemon_redis_prefix == "pokemon"
    assert settings(pokemon_redis_prefix="staging-2.bot_a").pokemon_redis_prefix == (
        "staging-2.bot_a"
    )
    for bad in ("", "two words", "a:b", "-leading", "x" * 65):
        with pytest.raises(ValueError, match="letters, digits"):
            settings(pokemon_redis_prefix=bad)


def test_metrics_on_serve_the_free_space_of_the_databases_folder(
    settings: Any, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    database = tmp_path / "data" / "bot.sqlite3"
    database.parent.mkdir()
    assert start_metrics(settings(pokemon_metrics_port=port), disk=database.parent) is True
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    assert f'pokemon_disk_free_bytes{{path="{database.parent.resolve()}"}}' in text
    assert f'pokemon_disk_size_bytes{{path="{database.parent.resolve()}"}}' in text
