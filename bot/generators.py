"""Which generator the bot runs: the in-process worker thread, or remote workers on Redis.

`make_generator(settings)` is the one place that decides. Without `POKEMON_REDIS_URL` (the
default) it loads the model and returns a `ThreadGenerator`; with it, it loads no model and
returns a `RemoteGenerator` that submits to `pokemon-bot worker` processes. Both implement
`generation.generator.Generator`; neither is started here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.settings import Settings
from generation.generator import Generator


def load_engine_for(settings: Settings) -> Any:
    """The engine per the settings (`fake:...` selects the test engine). Raises ModelLoadError."""
    from generation.fake_engine import open_engine

    return open_engine(
        settings.pokemon_model,
        device=settings.pokemon_device,
        safety_checker=settings.pokemon_safety_checker == "on",
        compile=settings.pokemon_compile == "on",
    )


def is_remote(settings: Settings) -> bool:
    return settings.pokemon_redis_url is not None


def make_generator(
    settings: Settings, *, engine_factory: Callable[[Settings], Any] = load_engine_for
) -> Generator:
    """The generator for these settings, not started. Loads the model (slow, blocking: call it
    in a thread) only for the in-process generator. Raises ModelLoadError for a bad model."""
    if settings.pokemon_redis_url is not None:
        from generation.remote import RemoteGenerator

        return RemoteGenerator(
            settings.pokemon_redis_url.get_secret_value(), queue_size=settings.pokemon_queue_size
        )
    from generation.local import ThreadGenerator
    from generation.worker import GenerationWorker

    worker = GenerationWorker(
        engine_factory(settings),
        queue_size=settings.pokemon_queue_size,
        max_batch=settings.pokemon_max_batch,
        job_timeout=settings.pokemon_job_timeout,
        heartbeat_file=settings.pokemon_heartbeat_file,
    )
    return ThreadGenerator(worker)


def start_metrics(settings: Settings) -> bool:
    """Serve Prometheus metrics on `POKEMON_METRICS_PORT` when set (README, "More than one
    GPU"); False when unset. Raises OSError when the port is taken."""
    if settings.pokemon_metrics_port is None:
        return False
    from generation.metrics import start_metrics_server

    start_metrics_server(settings.pokemon_metrics_port)
    return True
