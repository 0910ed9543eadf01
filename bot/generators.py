"""Which generator the bot runs: remote workers on Redis, or (the default) its own model.

`make_remote_generator(settings)` is the one place that decides: with `POKEMON_REDIS_URL` it
returns a `RemoteGenerator` (not started) that submits to `pokemon-bot worker` processes, and
the bot loads no model; without it, None, and the bot builds its in-process `ThreadGenerator`
as before (`bot.app.make_generator`). `load_prompt_translator(settings)` is the translator for
wherever generation runs: the bot's own engine and each `pokemon-bot worker` load it through
this one function, and `load_upscaler(settings, device)` the upscaler (⬆️) likewise.
`start_metrics` serves the Prometheus endpoint. `engine_sizing` and
`start_fast_path` size a loaded engine's worker (on a GPU from its free memory) and start
POKEMON_COMPILE's compiled path for the shapes that worker will draw.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from bot.settings import Settings

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from generation.device_policy import DeviceDefaults
    from generation.remote import RemoteGenerator
    from generation.translate import Translator
    from generation.upscale_job import UpscaleRunner


def is_remote(settings: Settings) -> bool:
    return settings.pokemon_redis_url is not None


def make_remote_generator(settings: Settings) -> RemoteGenerator | None:
    """The Redis-backed generator when `POKEMON_REDIS_URL` is set (no model needed), else None."""
    if settings.pokemon_redis_url is None:
        return None
    from generation.remote import RemoteGenerator

    return RemoteGenerator(
        settings.pokemon_redis_url.get_secret_value(),
        queue_size=settings.pokemon_queue_size,
        prefix=settings.pokemon_redis_prefix,
    )


def load_prompt_translator(settings: Settings) -> Translator:
    """The English→Japanese translator per the settings (POKEMON_TRANSLATE, _MODEL, _DEVICE),
    for the engine wherever generation runs: the bot's worker thread or `pokemon-bot worker`.

    Off gives a `NullTranslator`; a model that will not load gives one too, saying why in one
    warning line, and generation goes on with English prompts passed through untranslated.
    """
    from generation.translate import NullTranslator, load_translator_or_null

    if settings.pokemon_translate == "off":
        return NullTranslator("POKEMON_TRANSLATE is off")
    return load_translator_or_null(
        settings.pokemon_translate_model, device=settings.pokemon_translate_device
    )


def engine_sizing(settings: Settings, engine: object) -> DeviceDefaults:
    """`settings.worker_sizing` for a loaded engine: its device, and on a GPU the memory that
    was free once the model was loaded (so an unset POKEMON_MAX_BATCH fits the card)."""
    device = str(getattr(engine, "device", "cpu"))
    return settings.worker_sizing(device, free_bytes=getattr(engine, "free_bytes", None))


def start_fast_path(settings: Settings, engine: object, *, max_batch: int | None = None) -> None:
    """POKEMON_COMPILE for a loaded engine (generation.fastpath): compiled modules for every
    batch size up to the worker's max_batch (`max_batch` when given: `worker --max-batch`) at
    the three sizes, warmed in the background (`on`: the first one before this returns),
    reusing POKEMON_COMPILE_CACHE."""
    from generation.fastpath import start_for_engine

    start_for_engine(
        engine,
        settings.pokemon_compile,
        max_batch=max_batch or engine_sizing(settings, engine).max_batch,
        size=settings.pokemon_size,
        cache_dir=settings.pokemon_compile_cache,
    )


def start_metrics(settings: Settings, *, disk: Path | None = None) -> bool:
    """Serve Prometheus metrics on `POKEMON_METRICS_PORT` when set (README, "Monitoring"),
    with the free space of `disk`'s file system (the bot: its database's folder); False when
    unset. Raises OSError when the port is taken."""
    if settings.pokemon_metrics_port is None:
        return False
    from generation.metrics import start_metrics_server, watch_disk

    if disk is not None:
        watch_disk(disk)
    start_metrics_server(settings.pokemon_metrics_port)
    return True


def load_upscaler(settings: Settings, device: str) -> UpscaleRunner | None:
    """The upscaler (POKEMON_UPSCALER) for wherever generation runs (the bot's worker thread or
    `pokemon-bot worker`), on the engine's `device`; None when it is off, or does not load
    (said in one warning line: ⬆️ then answers that upscaling is off, and drawing goes on)."""
    from generation.errors import ModelLoadError
    from generation.upscale_job import load_upscale_runner
    from generation.upscale_weights import parse_upscaler

    if parse_upscaler(settings.pokemon_upscaler) is None:
        log.info("upscaling is off (POKEMON_UPSCALER=off)")
        return None
    try:
        return load_upscale_runner(settings.pokemon_upscaler, device=device)
    except ModelLoadError as exc:
        log.warning("upscaler %s not loaded, upscaling is off: %s", settings.pokemon_upscaler, exc)
        return None
