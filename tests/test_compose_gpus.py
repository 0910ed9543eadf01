"""docker-compose.gpus.yml: Redis persistent and password-protected, the bot without a GPU,
one worker per GPU, all on the same Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.gpus.yml").read_text("utf-8"))


def workers_of(compose: dict[str, Any]) -> dict[str, Any]:
    return {name: s for name, s in compose["services"].items() if name.startswith("worker")}


def test_redis_is_append_only_with_a_password_and_a_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--requirepass") + 1].startswith("${REDIS_PASSWORD:?")
    volume = redis["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]


def test_the_bot_has_no_gpu_and_talks_to_redis(compose: dict[str, Any]) -> None:
    bot = compose["services"]["bot"]
    assert "deploy" not in bot
    assert bot["environment"]["POKEMON_REDIS_URL"] == "redis://:${REDIS_PASSWORD}@redis:6379/0"
    assert bot.get("command") in (None, ["run"])


def test_each_worker_has_its_own_gpu_name_and_the_same_redis(compose: dict[str, Any]) -> None:
    workers = workers_of(compose)
    assert len(workers) >= 2
    gpus, names = [], []
    for worker in workers.values():
        assert worker["command"] == ["worker"]
        env = worker["environment"]
        assert (
            env["POKEMON_REDIS_URL"]
            == compose["services"]["bot"]["environment"]["POKEMON_REDIS_URL"]
        )
        names.append(env["POKEMON_WORKER_NAME"])
        (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia"
        gpus.extend(device["device_ids"])
    assert len(set(gpus)) == len(gpus) == len(workers)
    assert len(set(names)) == len(names)


def test_the_password_is_documented_in_the_example_env() -> None:
    assert "REDIS_PASSWORD" in (ROOT / ".env.example").read_text("utf-8")
