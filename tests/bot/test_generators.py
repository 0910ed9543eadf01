"""`make_generator`: the in-process thread by default, Redis workers with POKEMON_REDIS_URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.generators import is_remote, load_engine_for, make_generator
from bot.settings import Settings
from generation.fake_engine import FakeEngine
from generation.local import ThreadGenerator
from generation.remote import RemoteGenerator


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)  # no .env
    for name in ("POKEMON_REDIS_URL", "POKEMON_MODEL", "POKEMON_DEVICE"):
        monkeypatch.delenv(name, raising=False)

    def make(**values: Any) -> Settings:
        return Settings(**values)

    return make


def test_without_redis_the_model_loads_into_a_thread_generator(settings: Any) -> None:
    loaded: list[Settings] = []
    chosen = settings(pokemon_max_batch=3, pokemon_queue_size=5)

    def factory(s: Settings) -> FakeEngine:
        loaded.append(s)
        return load_engine_for(s.model_copy(update={"pokemon_model": "fake:"}))

    generator = make_generator(chosen, engine_factory=factory)
    assert isinstance(generator, ThreadGenerator)
    assert loaded == [chosen]
    assert not is_remote(chosen)
    assert generator.worker.max_batch == 3


def test_with_redis_no_model_is_loaded(settings: Any) -> None:
    def factory(_: Settings) -> None:
        raise AssertionError("the bot must not load a model for remote workers")

    chosen = settings(pokemon_redis_url="redis://:secret@redis:6379/0")
    generator = make_generator(chosen, engine_factory=factory)
    assert isinstance(generator, RemoteGenerator)
    assert is_remote(chosen)
    assert "secret" not in repr(chosen.pokemon_redis_url)


def test_the_fake_model_setting_selects_the_fake_engine(settings: Any) -> None:
    engine = load_engine_for(settings(pokemon_model="fake:step=0", pokemon_device="cpu"))
    assert isinstance(engine, FakeEngine)
    assert engine.device == "cpu"
