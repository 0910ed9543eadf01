"""`pokemon-bot worker`: serve generation jobs from Redis on this machine's GPU (or CPU).

Run one per GPU, on any machine that can reach Redis (`POKEMON_REDIS_URL`; workers only dial
out). It loads the model like the bot does (`POKEMON_MODEL`, `POKEMON_DEVICE`), and the
English→Japanese translator through the bot's own `load_prompt_translator` (`POKEMON_TRANSLATE`,
`POKEMON_TRANSLATE_MODEL`, `POKEMON_TRANSLATE_DEVICE`): translation runs where generation runs.
It loads the upscaler (`POKEMON_UPSCALER`, for ⬆️) through the bot's `load_upscaler`: off, or
not loadable, and this worker's upscale jobs fail as `upscaler_off`.
It batches up to `POKEMON_MAX_BATCH` compatible jobs and announces itself as
`POKEMON_WORKER_NAME`. The logic lives in `generation/remote_worker.py`; this module only reads
settings and handles signals.

`POKEMON_MODEL=fake:step=0.05` runs the fake engine of `generation/fake_engine.py` (tests and
benchmarks only: no model, no translator, steps that only take time).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import socket
import time
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from bot.cli import CliError
from bot.commands_cli.run import settings_error_line

if TYPE_CHECKING:
    from generation.remote_worker import RemoteWorker


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default=None, help="worker name (POKEMON_WORKER_NAME)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (POKEMON_DEVICE)")
    parser.add_argument("--model", default=None, help="Hub id, folder or fake:... (POKEMON_MODEL)")
    parser.add_argument(
        "--max-batch", type=int, default=None, help="largest batch (POKEMON_MAX_BATCH)"
    )
    parser.add_argument(
        "--reclaim-idle",
        type=float,
        default=5.0,
        help="seconds before the jobs of a silent worker are taken over (default 5)",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=3,
        help="a job started this often without finishing is failed as poison (default 3)",
    )
    parser.add_argument(
        "--heartbeat", type=float, default=1.0, help="seconds between heartbeats (default 1)"
    )
    parser.add_argument(
        "--prefix", default=None, help="Redis key prefix (default POKEMON_REDIS_PREFIX, pokemon)"
    )
    parser.add_argument("--log-level", default=None, help="override POKEMON_LOG_LEVEL")


def default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def main(args: argparse.Namespace) -> int:
    from bot.generators import (
        engine_sizing,
        load_prompt_translator,
        load_upscaler,
        start_fast_path,
        start_metrics,
    )
    from bot.logging_setup import setup_logging
    from bot.settings import Settings
    from generation.errors import ModelLoadError
    from generation.fake_engine import is_fake, open_engine
    from generation.remote_worker import RemoteWorker, WorkerConfig
    from generation.streams import url_secrets
    from generation.threads import call_on_own_thread

    try:
        settings = Settings()
    except ValidationError as exc:
        raise CliError(settings_error_line(exc)) from None
    if settings.pokemon_redis_url is None:
        raise CliError("POKEMON_REDIS_URL is not set; a worker takes its jobs from Redis")
    url = settings.pokemon_redis_url.get_secret_value()
    try:
        # The password only: the URL without it names which Redis a log line is about.
        setup_logging(args.log_level or settings.pokemon_log_level, secrets=url_secrets(url))
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        config = WorkerConfig(
            url=url,
            name=args.name or settings.pokemon_worker_name or default_name(),
            max_batch=args.max_batch or settings.pokemon_max_batch,
            prefix=args.prefix or settings.pokemon_redis_prefix,
            job_timeout=settings.pokemon_job_timeout,
            reclaim_idle=args.reclaim_idle,
            max_attempts=args.max_attempts,
            heartbeat=args.heartbeat,
            heartbeat_file=settings.pokemon_heartbeat_file,
            previews=settings.preview_pacing(),
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    model = args.model or settings.pokemon_model
    device = args.device or settings.pokemon_device
    log = logging.getLogger("bot.worker")
    try:
        start_metrics(settings)
    except OSError as exc:
        raise CliError(f"POKEMON_METRICS_PORT {settings.pokemon_metrics_port}: {exc}") from None

    def load() -> Any:
        # As the bot's in-process path does: a translator that will not load leaves generation
        # working and English passed through (one warning line). The fake engine needs none.
        translator = None if is_fake(model) else load_prompt_translator(settings)
        return open_engine(
            model,
            device=device,
            safety_checker=settings.pokemon_safety_checker == "on",
            translator=translator,
        )

    log.info("loading model %s on %s…", model, device)
    started = time.perf_counter()
    try:
        # On a thread that ends, as `pokemon-bot run` does: torch on this thread would keep
        # an OpenMP team alive beside the worker thread's (generation/threads.py).
        engine = call_on_own_thread(load, name="model-load")
    except ModelLoadError as exc:
        raise CliError(f"model {model}: {exc}") from None
    log.info("loading model… %.1f s", time.perf_counter() - started)
    # The same sizing as the bot's own worker: on a CPU one image per batch and a time limit
    # that fits, on a GPU the batch its free memory holds; --max-batch, POKEMON_MAX_BATCH and
    # POKEMON_JOB_TIMEOUT win when given.
    sizing = engine_sizing(settings, engine)
    start_fast_path(settings, engine, max_batch=args.max_batch)  # POKEMON_COMPILE: background
    config = dataclasses.replace(
        config,
        max_batch=args.max_batch or sizing.max_batch,
        job_timeout=sizing.job_timeout,
    )
    # ⬆️ upscales, as the bot's own worker thread does (none with the fake engine, or off).
    upscaler = (
        None
        if is_fake(model)
        else call_on_own_thread(load_upscaler, settings, engine.device, name="upscaler-load")
    )
    return asyncio.run(_serve(RemoteWorker(engine, config, upscaler)))


async def _serve(worker: RemoteWorker) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.request_stop)
    return await worker.run()
