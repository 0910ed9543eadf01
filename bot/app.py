"""Start-up and shutdown wiring: database → model → worker → bot, and back down in reverse.

The model loads before the gateway connects, so a bad model or device fails in seconds with
one clear line instead of after a login (logins are capped at 1000 a day). SIGINT and SIGTERM
stop intake, let the running job finish or leave it persisted, close worker and database, and
exit 0; an unhealthy worker (a fatal device error) exits non-zero so a supervisor restarts us.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import discord

from bot.client import EXIT_OK, PokemonBot
from bot.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

EXIT_CONFIG = 2  # bad settings, a rejected token, a model that will not load


class StartupError(Exception):
    """A start-up failure the operator can fix; printed as one line."""


def load_model(settings: Settings) -> Any:
    """The generation engine, per the settings. Raises `ModelLoadError` (one line)."""
    from generation.loader import load_engine

    return load_engine(
        settings.pokemon_model,
        device=settings.pokemon_device,
        safety_checker=settings.pokemon_safety_checker == "on",
        compile=settings.pokemon_compile == "on",
    )


def make_worker(settings: Settings, engine: Any) -> Any:
    """The one generation worker thread, sized by the settings (not started)."""
    from generation.worker import GenerationWorker

    return GenerationWorker(
        engine,
        queue_size=settings.pokemon_queue_size,
        max_batch=settings.pokemon_max_batch,
        job_timeout=settings.pokemon_job_timeout,
        heartbeat_file=settings.pokemon_heartbeat_file,
    )


async def run_bot(
    settings: Settings,
    *,
    engine_factory: Callable[[Settings], Any] = load_model,
    bot_factory: Callable[..., PokemonBot] = PokemonBot,
) -> int:
    """Run the bot until a signal or a fatal worker error; the process exit status."""
    from generation.errors import ModelLoadError
    from storage import Storage, StorageError

    if settings.discord_token is None or not settings.discord_token.get_secret_value().strip():
        raise StartupError("DISCORD_TOKEN is not set; put the bot token in the environment or .env")
    token = settings.discord_token.get_secret_value().strip()
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    bot: PokemonBot | None = None

    def on_signal(signame: str) -> None:
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
        worker = None
        try:
            log.info("loading model %s on %s…", settings.pokemon_model, settings.pokemon_device)
            started = time.perf_counter()
            try:
                engine = await asyncio.to_thread(engine_factory, settings)
            except ModelLoadError as exc:
                raise StartupError(f"model {settings.pokemon_model}: {exc}") from None
            log.info(
                "loading model… %.1f s (device=%s dtype=%s)",
                time.perf_counter() - started,
                getattr(engine, "device", "?"),
                getattr(engine, "dtype", "?"),
            )
            if stop_requested.is_set():
                return EXIT_OK
            worker = make_worker(settings, engine)
            worker.start(loop)
            bot = bot_factory(settings=settings, store=store, worker=worker, engine=engine)
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
            return bot.exit_code
        finally:
            if worker is not None:
                await worker.stop(timeout=30.0)
            await store.close()
            log.info("stopped")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
