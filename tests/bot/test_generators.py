"""`make_remote_generator`: Redis workers with POKEMON_REDIS_URL, the bot's own model without."""

from __future__ import annotations

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
