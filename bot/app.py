"""Start-up and shutdown wiring: database → model → worker → bot, and back down in reverse.

The model loads before the gateway connects, so a bad model or device fails in seconds with
one clear line instead of after a login (logins are capped at 1000 a day). SIGINT and SIGTERM
stop intake, let the running job finish or leave it persisted, close worker and database, and
exit 0; an unhealthy worker (a fatal device error) exits non-zero so a supervisor restarts us.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl

from bot.client import EXIT_OK, PokemonBot
from bot.crashloop import CrashLoopGuard, starts_file_for
from bot.generators import (
    load_prompt_translator,
    load_upscaler,
    make_remote_generator,
    start_fast_path,
    start_metrics,
)
from bot.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

EXIT_CONFIG = 2  # bad settings, a rejected token, a model that will not load
EXIT_INTERRUPTED = 130  # a second Ctrl-C: out at once, as shells report SIGINT
# For testing against a loopback Discord only (e.g. `tests/fakediscord`, which a subprocess
# cannot otherwise reach): the REST base, e.g. http://127.0.0.1:8123/api/v10, and optionally
# the gateway URL (default: ws:// on the same host and port). Never set in production.
API_BASE_VARIABLE = "POKEMON_DISCORD_API_BASE"
GATEWAY_VARIABLE = "POKEMON_DISCORD_GATEWAY"


class StartupError(Exception):
    """A start-up failure the operator can fix; printed as one line."""


def redirect_discord(api_base: str | None, gateway: str | None = None) -> None:
    """Point discord.py at another Discord (a loopback fake in tests); no-op without a base."""
    if not api_base:
        return
    base = yarl.URL(api_base.rstrip("/"))
    if gateway:
        ws = yarl.URL(gateway)
    else:
        ws = base.with_scheme("wss" if base.scheme == "https" else "ws").with_path("/")
    log.warning("using the Discord at %s (gateway %s): for testing only", base, ws)
    discord.http.Route.BASE = str(base)
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = ws


def load_model(settings: Settings) -> Any:
    """The generation engine, per the settings, with its English→Japanese translator.
    Raises `ModelLoadError` (one line) for the model; a translator that will not load leaves
    generation working and English prompts untranslated (said once in the log)."""
    from generation.loader import load_engine

    engine = load_engine(
        settings.pokemon_model,
        device=settings.pokemon_device,
        safety_checker=settings.pokemon_safety_checker == "on",
        translator=load_prompt_translator(settings),
    )
    start_fast_path(settings, engine)  # POKEMON_COMPILE: warms up in the background
    return engine


def no_upscaler(settings: Settings, device: str) -> None:
    """For a custom engine factory (tests) that brings no upscaler: upscaling is off."""


def make_generator(settings: Settings, engine: Any, upscaler: Any = None) -> Any:
    """The in-process generator: one worker thread over `engine` (and `upscaler` for ⬆️),
    sized by the settings for the engine's device (not started): on the CPU one image per
    batch and a timeout that fits its speed."""
    from generation.local import ThreadGenerator
    from generation.worker import GenerationWorker

    device = str(getattr(engine, "device", "cpu"))
    sizing = log_device_sizing(settings, device, getattr(engine, "free_bytes", None))
    return ThreadGenerator(
        GenerationWorker(
            engine,
            upscaler=upscaler,
            queue_size=settings.pokemon_queue_size,
            max_batch=sizing.max_batch,
            job_timeout=sizing.job_timeout,
            heartbeat_file=settings.pokemon_heartbeat_file,
            previews=settings.preview_pacing(),
        )
    )


def log_device_sizing(settings: Settings, device: str, free_bytes: int | None = None) -> Any:
    """`settings.worker_sizing(device, free_bytes=...)`, with one start-up line saying what to
    expect there (`free_bytes`: GPU memory free once the model loaded, when known)."""
    sizing = settings.worker_sizing(device, free_bytes=free_bytes)
    if sizing.minutes_per_image is None and "max_batch" in sizing.changed:
        log.info(
            "running on %s: batches of up to %d pictures, what fits in its free memory "
            "(set POKEMON_MAX_BATCH to choose)",
            device,
            sizing.max_batch,
        )
    if sizing.minutes_per_image is not None:
        log.warning(
            "running on %s: expect about %.0f min per %d² image at %d steps; batch %d, "
            "timeout %.0f min per image%s",
            device,
            sizing.minutes_per_image,
            settings.pokemon_size,
            settings.pokemon_steps,
            sizing.max_batch,
            sizing.job_timeout / 60,
            " (changed for the CPU; set POKEMON_MAX_BATCH / POKEMON_JOB_TIMEOUT to choose)"
            if sizing.changed
            else "",
        )
    return sizing


class _StoppedWhileLoading(Exception):
    """A signal came while the model was loading: cleaned up, the load thread left running."""


def _exit_now(code: int) -> NoReturn:
    """Flush the log and stdio and leave at once, without joining any thread."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


async def run_bot(
    settings: Settings,
    *,
    engine_factory: Callable[[Settings], Any] = load_model,
    upscaler_factory: Callable[[Settings, str], Any] | None = None,
    bot_factory: Callable[..., PokemonBot] = PokemonBot,
    crash_guard: CrashLoopGuard | None = None,
) -> int:
    """Run the bot until a signal or a fatal worker error; the process exit status.

    `crash_guard` (default: a record next to the database) delays the login after repeated
    crashed starts, so a crash loop cannot burn Discord's daily login allowance.

    A stop while the model loads ends the process here, once the database is closed: the load
    cannot be interrupted, and a first download runs on huggingface_hub's ThreadPoolExecutor,
    whose threads the interpreter joins at exit after they have drained every queued file
    (minutes). `os._exit` leaves without them.

    `upscaler_factory` (settings, device): the upscaler loaded after the engine; by default
    `load_upscaler` with `load_model`, and none with another engine factory.
    """
    if upscaler_factory is None:
        upscaler_factory = load_upscaler if engine_factory is load_model else no_upscaler
    try:
        return await _run_bot(
            settings,
            engine_factory=engine_factory,
            upscaler_factory=upscaler_factory,
            bot_factory=bot_factory,
            crash_guard=crash_guard,
        )
    except _StoppedWhileLoading:
        _exit_now(EXIT_OK)


async def _run_bot(
    settings: Settings,
    *,
    engine_factory: Callable[[Settings], Any],
    upscaler_factory: Callable[[Settings, str], Any],
    bot_factory: Callable[..., PokemonBot],
    crash_guard: CrashLoopGuard | None,
) -> int:
    from generation.errors import ModelLoadError
    from storage import Storage, StorageError

    if settings.discord_token is None or not settings.discord_token.get_secret_value().strip():
        raise StartupError("DISCORD_TOKEN is not set; put the bot token in the environment or .env")
    token = settings.discord_token.get_secret_value().strip()
    started_at = time.time()
    redirect_discord(os.environ.get(API_BASE_VARIABLE), os.environ.get(GATEWAY_VARIABLE))
    if crash_guard is None:
        crash_guard = CrashLoopGuard(starts_file_for(Path(settings.pokemon_db)))
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    bot: PokemonBot | None = None

    def on_signal(signame: str) -> None:
        if signame == "SIGINT" and stop_requested.is_set():
            # A second Ctrl-C: the operator does not want to wait for a graceful stop.
            log.warning("SIGINT again: exiting at once")
            _exit_now(EXIT_INTERRUPTED)
        log.info("%s received", signame)
        stop_requested.set()
        if bot is not None:
            bot.request_shutdown(EXIT_OK)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig.name)
    try:
        try:
            store = await Storage.open(
                settings.pokemon_db,
                default_limit=settings.default_limit,
                owner_ids=settings.pokemon_owner_ids,
                max_pending=settings.pokemon_user_max_pending,
            )
        except StorageError as exc:
            raise StartupError(f"database {settings.pokemon_db}: {exc}") from None
        generator = None
        try:
            try:
                start_metrics(settings, disk=settings.pokemon_db.parent)
            except OSError as exc:
                raise StartupError(
                    f"POKEMON_METRICS_PORT {settings.pokemon_metrics_port}: {exc}"
                ) from None
            generator = make_remote_generator(settings)
            if generator is not None:
                # Remote workers hold the model: the bot loads none and needs no GPU.
                log.info("generating on remote workers through Redis; no model loaded here")
            else:
                log.info("loading model %s on %s…", settings.pokemon_model, settings.pokemon_device)
                started = time.perf_counter()
                try:
                    engine = await _until_stopped(engine_factory, settings, stop_requested)
                except ModelLoadError as exc:
                    raise StartupError(f"model {settings.pokemon_model}: {exc}") from None
                if engine is None:
                    log.info("stopped while the model was loading")
                    raise _StoppedWhileLoading
                log.info(
                    "loading model… %.1f s (device=%s dtype=%s)",
                    time.perf_counter() - started,
                    getattr(engine, "device", "?"),
                    getattr(engine, "dtype", "?"),
                )
                if stop_requested.is_set():
                    return EXIT_OK
                # On a thread that ends, as the model: no torch thread is left beside the
                # worker's, and a stop meanwhile leaves at once.
                device = str(getattr(engine, "device", "cpu"))
                upscaler = await _until_stopped(
                    lambda s: upscaler_factory(s, device), settings, stop_requested
                )
                if stop_requested.is_set():
                    log.info("stopped while the upscaler was loading")
                    raise _StoppedWhileLoading
                generator = make_generator(settings, engine, upscaler)
            await generator.start()
            if not await _back_off(crash_guard, stop_requested):
                return EXIT_OK
            crash_guard.record_login(started_at)
            bot = bot_factory(settings=settings, store=store, generator=generator)
            async with bot:
                try:
                    await bot.start(token)
                except discord.LoginFailure:
                    raise StartupError(
                        "Discord rejected DISCORD_TOKEN; check the bot token"
                    ) from None
                except discord.PrivilegedIntentsRequired as exc:  # pragma: no cover - none asked
                    raise StartupError(str(exc)) from None
                except (OSError, aiohttp.ClientError, discord.HTTPException) as exc:
                    if bot.is_ready():
                        raise  # not a start-up problem: let the supervisor see it
                    raise StartupError(f"could not start on Discord: {exc}") from None
                finally:
                    await bot.wait_shutdown()
            crash_guard.record_exit(clean=bot.exit_code == EXIT_OK)
            return bot.exit_code
        finally:
            if generator is not None:
                await generator.stop(timeout=30.0)
            await store.close()
            log.info("stopped")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _until_stopped(
    load: Callable[[Settings], Any], settings: Settings, stop_requested: asyncio.Event
) -> Any:
    """`load(settings)` in a daemon thread; None as soon as a signal asks to stop meanwhile.

    A model load (or first download) can take minutes and cannot be interrupted from outside,
    so it is not awaited to the end: the thread (and any download pool it started) is left
    behind, `run_bot` leaves with `os._exit`, and Ctrl-C stops within a moment instead of
    after the load.
    """
    loop = asyncio.get_running_loop()
    loaded: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if loaded.done():
            return
        if error is not None:
            loaded.set_exception(error)
        else:
            loaded.set_result(result)

    def work() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = load(settings)
        except BaseException as exc:
            error = exc
        # The loop has closed when nobody waits any more (a stop came first).
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name="model-load", daemon=True).start()
    stopped = asyncio.ensure_future(stop_requested.wait())
    try:
        await asyncio.wait({loaded, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if loaded.done():
        return loaded.result()
    return None


async def _back_off(guard: CrashLoopGuard, stop_requested: asyncio.Event) -> bool:
    """Wait as the crash-loop guard says; False if a signal asked us to stop meanwhile."""
    guard.load()
    delay = guard.delay()
    if delay <= 0:
        return True
    log.warning(
        "the last %d starts crashed within %.0f s of each other; waiting %.1f s before logging "
        "in (Discord resets the token after 1000 logins a day)",
        guard.crashes_in_a_row(),
        guard.window,
        delay,
    )
    try:
        await asyncio.wait_for(stop_requested.wait(), delay)
    except TimeoutError:
        return True
    return False
