"""`pokemon-bot doctor`: check settings, token, model, translation model, device and database;
say how to fix each ✗.

With POKEMON_REDIS_URL the model, safety checker, translation model and device are not
checked: remote workers hold them (one line says how to check a worker machine); Redis and its workers are checked.

`pokemon-bot doctor --quick` checks only the worker's heartbeat file: the Docker healthcheck.
Everything here is read-only for the real deployment: the database is checked on a copy, the
model and the translation model only in the local cache (the Hub is asked only when online and
the model is not cached; nothing is downloaded).
The token is never printed: every line goes through `_Report.line`, which redacts it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.commands_cli.invite import TokenError, application_id_from_token, load_token
from bot.logging_setup import redact
from bot.settings import Settings
from generation.errors import one_line

OK, FAIL, WARN = "✓", "✗", "!"

# The worker touches the heartbeat at least every 10 s; 60 s leaves room for a slow disk or a
# long garbage-collection pause without flapping the container to unhealthy.
HEARTBEAT_MAX_AGE = 60.0


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report: `status` is ✓, ✗ or ! (a warning that does not fail doctor)."""

    status: str
    name: str
    detail: str
    fix: str = ""


class _Report:
    """Prints checks as they finish, every secret redacted, and remembers whether any failed."""

    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.failed = False

    def add_secret(self, secret: str | None) -> None:
        if secret and secret.strip():
            self.secrets.append(secret.strip())
            # The HMAC part alone is also a secret; the first part is only the public id.
            parts = secret.strip().split(".")
            if len(parts) == 3 and len(parts[2]) >= 6:
                self.secrets.append(parts[2])

    def line(self, text: str) -> None:
        print(redact(text, sorted(self.secrets, key=len, reverse=True)), flush=True)

    def show(self, check: Check) -> None:
        self.failed = self.failed or check.status == FAIL
        self.line(f"{check.status} {check.name}: {check.detail}")
        if check.fix:
            self.line(f"    fix: {check.fix}")


# --- settings and token ---------------------------------------------------------------------


def _field_env(loc: tuple[Any, ...]) -> str:
    return str(loc[0]).upper() if loc else "settings"


def _load_settings() -> tuple[Settings | None, list[Check], set[str]]:
    """Settings as `run` builds them; on errors, one ✗ per field and the others at defaults."""
    try:
        return Settings(), [Check(OK, "settings", _settings_source())], set()
    except ValidationError as exc:
        checks: list[Check] = []
        bad: set[str] = set()
        for error in exc.errors(include_url=False, include_input=False):
            loc = tuple(error.get("loc", ()))
            name = str(loc[0]) if loc else ""
            bad.add(name)
            field = Settings.model_fields.get(name)
            default = field.get_default(call_default_factory=True) if field is not None else None
            # The message only, never the input: a value could be a secret pasted in the wrong place.
            fix = f"set {_field_env(loc)} in .env or the environment"
            if field is not None and field.description:
                fix += f" ({field.description.rstrip('.')}; default {_show_default(default)})"
            checks.append(Check(FAIL, _field_env(loc), str(error.get("msg", "invalid")), fix))
    except Exception as exc:  # a broken .env file, for instance
        return None, [Check(FAIL, "settings", one_line(exc), "check the .env file")], set()
    known = {name for name in bad if name in Settings.model_fields}
    try:
        fallback = Settings(
            **{
                name: Settings.model_fields[name].get_default(call_default_factory=True)
                for name in known
            }
        )
    except Exception:
        return None, checks, bad
    return fallback, checks, bad


def _settings_source() -> str:
    """Where the settings came from: `.env` is read from the working folder, if it is there."""
    env_file = Path(".env")
    if env_file.is_file():
        return f"loaded from the environment and {env_file.absolute()}"
    return f"loaded from the environment only (no .env in {Path.cwd()})"


def _show_default(value: object) -> str:
    if value is None or value == []:
        return "empty"
    return str(value)


def _check_token(token: str | None) -> Check:
    if not token or not token.strip():
        return Check(
            FAIL,
            "DISCORD_TOKEN",
            "not set",
            "Developer Portal → your application → Bot → Reset Token, then put it in .env "
            "as DISCORD_TOKEN=…",
        )
    try:
        application_id = application_id_from_token(token)
    except TokenError as exc:
        return Check(FAIL, "DISCORD_TOKEN", str(exc), "copy the token again; never share it")
    return Check(
        OK,
        "DISCORD_TOKEN",
        f"present and well-formed (application id {application_id}); "
        "invite with `pokemon-bot invite`",
    )


# --- model and safety checker --------------------------------------------------------------

_MODEL_FIX = (
    "set POKEMON_MODEL to a folder with model_index.json (or to a Hub id such as "
    "svjack/Stable-Diffusion-Pokemon-ja)"
)


def _check_model(source: str) -> tuple[Check, dict[str, Any] | None]:
    """Where the model comes from (the loader says), and its components when they could be read."""
    from generation.loader import locate_model

    where = locate_model(source)
    if where.state == "not_found":
        return Check(FAIL, "model", f"local folder {where.folder} does not exist", _MODEL_FIX), None
    if where.state == "not_a_folder":
        return Check(
            FAIL, "model", f"local folder {where.folder} is a file, not a model folder", _MODEL_FIX
        ), None
    if where.state == "folder" and where.folder is not None:
        return _check_folder(where.folder, f"local folder {where.folder}")
    if where.state == "cached" and where.folder is not None:
        return _check_folder(where.folder, f"{source} cached in {where.cache}")
    if where.state == "not_cached_offline":
        return Check(
            FAIL,
            "model",
            f"{source} is not in the Hugging Face cache ({where.cache}) and HF_HUB_OFFLINE=1 "
            "forbids downloading it",
            "run once with network access (unset HF_HUB_OFFLINE) to download it, set HF_HOME "
            "to the cache that has it, or point POKEMON_MODEL at a local folder",
        ), None
    if where.state == "unknown":
        return Check(
            FAIL,
            "model",
            f"{source} is not a model on the Hugging Face Hub (or needs a login)",
            "check POKEMON_MODEL for typos; a local folder must exist on this machine",
        ), None
    if where.state == "unreachable":
        return Check(
            FAIL,
            "model",
            f"{source} is not cached and the Hub cannot be reached: {where.detail}",
            "check the network (or proxy), or copy a cache into HF_HOME",
        ), None
    return Check(
        OK,
        "model",
        f"{source} is not cached yet but reachable; the first start downloads it "
        f"(several GB) into {where.cache}",
    ), None


def _check_folder(folder: Path, where: str) -> tuple[Check, dict[str, Any] | None]:
    from generation.loader import model_parts

    parts = model_parts(folder)
    if parts.missing:
        lacks = parts.missing + parts.optional_missing
        return Check(
            FAIL,
            "model",
            f"{where} is incomplete: missing {', '.join(lacks)}",
            "copy the whole checkpoint (every component folder), or delete it and download again",
        ), None
    if parts.optional_missing:
        return Check(
            WARN,
            "model",
            f"{where} lacks {', '.join(parts.optional_missing)}; the bot runs without them",
            "copy the whole checkpoint if that was not meant",
        ), parts.present
    return Check(OK, "model", f"{where} ({', '.join(sorted(parts.components))})"), parts.components


def _check_safety(settings: Settings, components: dict[str, Any] | None) -> Check:
    wanted = settings.pokemon_safety_checker == "on"
    if components is None:
        return Check(
            WARN if wanted else OK,
            "safety checker",
            f"{settings.pokemon_safety_checker} (whether the model has one is unknown: see model)",
        )
    has = "safety_checker" in components
    if wanted and has:
        return Check(
            OK, "safety checker", "on (the model has one); flagged images are never posted"
        )
    if wanted:
        return Check(
            WARN,
            "safety checker",
            "on, but the model has none: images are posted unchecked",
            "use a checkpoint with a safety_checker folder, or set POKEMON_SAFETY_CHECKER=off "
            "to make that choice explicit",
        )
    if has:
        return Check(
            WARN,
            "safety checker",
            "off although the model has one: NSFW images can be posted",
            "set POKEMON_SAFETY_CHECKER=on unless every server using the bot allows that",
        )
    return Check(OK, "safety checker", "off (the model has none)")


# --- translation model ----------------------------------------------------------------------

_TRANSLATE_FIX = (
    "point POKEMON_TRANSLATE_MODEL at a whole MarianMT folder or Hub id (default {default}) and "
    "POKEMON_TRANSLATE_DEVICE at cpu, cuda or cuda:N, or set POKEMON_TRANSLATE=off to draw "
    "English prompts as typed; until then English prompts are passed through untranslated"
)


def _check_translator(settings: Settings) -> Check:
    """The translator loads (local folder or cached Hub id) and translates a probe phrase.

    Never downloads, and asks the Hub (once, bounded by `hub_timeout`) only when online and the
    Hub id is not cached: whether the first start can download it.
    """
    from generation.errors import ModelLoadError
    from generation.translate import (
        DEFAULT_TRANSLATE_MODEL,
        TranslatorNotCachedError,
        describe_translator,
    )

    name = "translation"
    if settings.pokemon_translate == "off":
        return Check(OK, name, "off (POKEMON_TRANSLATE=off): English prompts are drawn as typed")
    source = settings.pokemon_translate_model.strip()
    fix = _TRANSLATE_FIX.format(default=DEFAULT_TRANSLATE_MODEL)
    try:
        return Check(
            OK, name, describe_translator(source, device=settings.pokemon_translate_device)
        )
    except TranslatorNotCachedError as exc:
        return _translator_not_cached(source, str(exc))
    except ModelLoadError as exc:
        return Check(FAIL, name, str(exc), fix)


def _translator_not_cached(source: str, not_cached: str) -> Check:
    """A Hub id not in the cache: ✗ offline or when the Hub refuses or cannot be reached."""
    from huggingface_hub import constants

    from generation.hub import HubError, hub_files

    name = "translation"
    if constants.HF_HUB_OFFLINE:
        return Check(
            FAIL,
            name,
            f"{not_cached} and HF_HUB_OFFLINE=1 forbids downloading it: English prompts would "
            "be passed through untranslated",
            "run once with network access (unset HF_HUB_OFFLINE) to download it, set HF_HOME "
            "to the cache that has it, or point POKEMON_TRANSLATE_MODEL at a local folder",
        )
    try:
        hub_files(source)
    except HubError as exc:
        if exc.reason == "unreachable":
            return Check(
                FAIL,
                name,
                f"{not_cached} and the Hub cannot be reached: {exc}",
                "check the network (or proxy), copy a cache into HF_HOME, or point "
                "POKEMON_TRANSLATE_MODEL at a local folder",
            )
        return Check(
            FAIL,
            name,
            f"{not_cached}: {exc}",
            "check POKEMON_TRANSLATE_MODEL for typos; a local folder must exist on this machine",
        )
    return Check(
        OK,
        name,
        f"{source} is not cached yet but reachable; the first start downloads it "
        f"(a few hundred MB) into {constants.HF_HUB_CACHE}",
    )


# --- upscaler -------------------------------------------------------------------------------

_UPSCALER_FIX = (
    "set POKEMON_UPSCALER to a Real-ESRGAN 4x .pth/.safetensors file, a folder holding one, or a "
    "Hub file (default {default}), or to off; delete a damaged cached file so that it is "
    "downloaded again"
)


def _check_upscaler(settings: Settings) -> Check:
    """The upscaler's weights: present, checksum as pinned, a 4x model (generation says).

    Never downloads: a Hub file not cached yet is ✓ online (the first upscale fetches it) and
    ✗ with HF_HUB_OFFLINE.
    """
    from generation.upscale_weights import DEFAULT_UPSCALER, check_upscaler

    found = check_upscaler(settings.pokemon_upscaler)
    if found.state in ("off", "ready", "not_cached"):
        return Check(OK, "upscaler", found.detail)
    if found.state == "not_cached_offline":
        return Check(
            FAIL,
            "upscaler",
            found.detail,
            "run once with network access (unset HF_HUB_OFFLINE) to download it, set HF_HOME "
            "to the cache that has it, or set POKEMON_UPSCALER to a local file (or off)",
        )
    return Check(FAIL, "upscaler", found.detail, _UPSCALER_FIX.format(default=DEFAULT_UPSCALER))


# --- device ---------------------------------------------------------------------------------


def _check_device(settings: Settings) -> Check:
    # Only generation/ may import torch, so the probe lives there.
    from generation.loader import probe_device

    spec = settings.pokemon_device
    try:
        found = probe_device(spec)
    except Exception as exc:
        return Check(
            FAIL,
            "device",
            f"{spec}: {one_line(exc)}",
            "install the CUDA build of torch and the NVIDIA driver (in Docker: the NVIDIA "
            "container toolkit and the compose GPU reservation), or set POKEMON_DEVICE=cpu",
        )
    if found.device != "cpu":
        return Check(OK, "device", found.description)
    sizing = settings.worker_sizing(found.device)
    pace = (
        f"about {sizing.minutes_per_image or 0:.0f} min per {settings.pokemon_size}² image at "
        f"{settings.pokemon_steps} steps on {os.cpu_count() or 1} cores "
        f"(batch {sizing.max_batch}, timeout {sizing.job_timeout / 60:.0f} min per image)"
    )
    if found.fell_back_to_cpu:
        return Check(
            WARN,
            "device",
            f"auto fell back to the CPU: {found.description}; {pace}",
            "for a live bot use a GPU with the CUDA build of torch (POKEMON_TORCH=cuda when "
            "setting up); set POKEMON_DEVICE=cpu to make the CPU an explicit choice",
        )
    return Check(OK, "device", f"{found.description}; {pace}; a GPU is recommended for a live bot")


# --- database -------------------------------------------------------------------------------

_DB_FIX = (
    "set POKEMON_DB to a file in a writable folder (in Docker it lives on the data volume, "
    "owned by the image's user)"
)


def _check_database(settings: Settings) -> Check:
    from storage.check import check_database

    found = check_database(settings.pokemon_db)
    path = found.path
    if found.state == "is_folder":
        return Check(FAIL, "database", f"{path} is a folder, not a file", _DB_FIX)
    if found.state == "cannot_create":
        return Check(FAIL, "database", f"{path} cannot be created: {found.detail}", _DB_FIX)
    if found.state == "unopenable":
        return Check(
            FAIL,
            "database",
            f"{path} cannot be opened for writing: {found.detail}",
            f"{_DB_FIX}; if it is not a database, restore a backup or move it away",
        )
    if found.state == "too_new":
        return Check(
            FAIL,
            "database",
            f"{path} was written by a newer pokemon-bot: {found.detail}",
            "run the newer release again, or restore a backup made by this version "
            "(pokemon-bot backup)",
        )
    if found.state == "broken":
        return Check(
            FAIL,
            "database",
            f"{path} cannot be used: {found.detail}",
            "restore a backup (pokemon-bot backup makes them), or move the file away to "
            "start a new database",
        )
    relative = "" if settings.pokemon_db.is_absolute() else f" (POKEMON_DB={settings.pokemon_db})"
    if found.state == "new":
        return Check(
            OK, "database", f"{path}{relative} will be created at start (schema v{found.latest})"
        )
    if found.version == found.latest:
        return Check(
            OK,
            "database",
            f"{path}{relative} is writable, migrated (schema v{found.version}) and intact",
        )
    return Check(
        OK,
        "database",
        f"{path}{relative} is writable and intact (schema v{found.version}); migrations to "
        f"v{found.latest} applied cleanly to a copy and will run at start",
    )


# --- heartbeat (--quick) --------------------------------------------------------------------


def check_heartbeat(path: Path | None, max_age: float, now: float | None = None) -> Check:
    """✓ while the worker's heartbeat file is fresh; ✗ when unset, missing or stale."""
    if path is None:
        return Check(
            FAIL,
            "heartbeat",
            "POKEMON_HEARTBEAT_FILE is not set, so the worker writes no heartbeat",
            "set POKEMON_HEARTBEAT_FILE (the Docker image uses /tmp/pokemon-bot.heartbeat)",
        )
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return Check(
            FAIL,
            "heartbeat",
            f"{path} does not exist: the bot is not running, or its worker has not started",
            "read the logs (docker compose logs bot); the model may still be loading",
        )
    except OSError as exc:
        return Check(FAIL, "heartbeat", f"{path}: {one_line(exc)}", "check the path")
    if not path.is_file():
        return Check(FAIL, "heartbeat", f"{path} is not a file", "name a file, not a folder")
    age = (time.time() if now is None else now) - mtime
    if age > max_age:
        return Check(
            FAIL,
            "heartbeat",
            f"stale: last beat {age:.0f} s ago (limit {max_age:.0f} s); the generation worker "
            "is stuck or unhealthy",
            "read the logs (docker compose logs bot) and restart the bot",
        )
    return Check(OK, "heartbeat", f"worker healthy (last beat {max(age, 0):.0f} s ago)")


# --- entry point ----------------------------------------------------------------------------


# --- remote workers (POKEMON_REDIS_URL) ------------------------------------------------------


def check_redis(url: str, prefix: str = "pokemon") -> Check:
    """✓ Redis answers and workers are online (listed); ✗ unreachable, or no worker online."""
    import redis.exceptions

    from generation.streams import Keys, WorkerInfo, connect, read_workers, redact_url

    async def probe() -> list[WorkerInfo]:
        client = connect(url)
        try:
            await client.ping()
            return await read_workers(client, Keys(prefix))
        finally:
            await client.aclose()

    where = redact_url(url)
    try:
        workers = asyncio.run(probe())
    except (redis.exceptions.RedisError, OSError) as exc:
        return Check(
            FAIL,
            "redis",
            f"cannot reach {where}: {one_line(exc)}",
            "start Redis, or fix POKEMON_REDIS_URL (host, port, password; rediss:// for TLS)",
        )
    if not workers:
        return Check(
            FAIL,
            "redis",
            f"{where} answers, but no generation worker is online: users are told so",
            'start `pokemon-bot worker` on each GPU (README, "More than one GPU")',
        )
    listed = ", ".join(f"{w.name} ({w.device}, batch {w.max_batch})" for w in workers)
    count = f"{len(workers)} worker{'s' if len(workers) != 1 else ''}"
    return Check(OK, "redis", f"{where}: {count} online: {listed}")


# `doctor` has no worker mode: `generate` is what loads a worker's model on its device.
REMOTE_GENERATION = Check(
    OK,
    "generation",
    "on remote workers (POKEMON_REDIS_URL): model, safety checker, translation model, upscaler "
    "and GPU "
    'are theirs, not checked here; on each worker machine, `pokemon-bot generate "テスト" -o '
    'test.png` and `pokemon-bot translate "a fire dragon"` with that worker\'s settings '
    "check them",
)


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """Run one check; an unexpected error is that check's ✗, not a traceback for the operator."""
    try:
        return check()
    except Exception as exc:
        return Check(FAIL, name, f"check failed unexpectedly: {one_line(exc)}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="only check the worker's heartbeat file (the Docker healthcheck)",
    )
    parser.add_argument(
        "--max-age",
        type=float,
        default=HEARTBEAT_MAX_AGE,
        metavar="SECONDS",
        help=f"with --quick: oldest acceptable heartbeat (default {HEARTBEAT_MAX_AGE:.0f})",
    )


def main(args: argparse.Namespace) -> int:
    """Run the checks, print each with its fix, and exit 1 if any failed."""
    # `sys.stdout` is typed `TextIO`, which has no `reconfigure`; a replaced stream may lack it.
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="replace")  # ✓/✗ on a non-UTF-8 terminal
    # Libraries' own warnings would bury the report; the checks say what matters.
    logging.disable(logging.WARNING)
    report = _Report()
    try:
        token = load_token()
    except Exception:
        token = None
    report.add_secret(token)
    settings, checks, bad = _load_settings()
    if settings is not None and settings.discord_token is not None:
        report.add_secret(settings.discord_token.get_secret_value())

    if args.quick:
        if settings is None or bad:
            for check in checks:
                report.show(check)
        if settings is not None:
            report.show(check_heartbeat(settings.pokemon_heartbeat_file, args.max_age))
        return 1 if report.failed else 0

    for check in checks:
        report.show(check)
    report.show(_check_token(token))
    if settings is not None:
        components: dict[str, Any] | None = None
        # With Redis the workers hold the model: this machine has none and needs no GPU.
        remote = settings.pokemon_redis_url is not None
        if remote:
            report.show(REMOTE_GENERATION)
        if not remote and "pokemon_model" not in bad:
            try:
                model_check, components = _check_model(settings.pokemon_model)
            except Exception as exc:
                model_check = Check(FAIL, "model", f"check failed unexpectedly: {one_line(exc)}")
            report.show(model_check)
        if not remote:
            report.show(_guarded("safety checker", lambda: _check_safety(settings, components)))
        translation = {"pokemon_translate", "pokemon_translate_model", "pokemon_translate_device"}
        if not remote and not bad & translation:
            report.show(_guarded("translation", lambda: _check_translator(settings)))
        if not remote and "pokemon_upscaler" not in bad:
            report.show(_guarded("upscaler", lambda: _check_upscaler(settings)))
        if not remote and "pokemon_device" not in bad:
            report.show(_guarded("device", lambda: _check_device(settings)))
        if "pokemon_db" not in bad:
            report.show(_guarded("database", lambda: _check_database(settings)))
        redis_url = settings.pokemon_redis_url
        if redis_url is not None:
            prefix = settings.pokemon_redis_prefix
            report.show(
                _guarded("redis", lambda: check_redis(redis_url.get_secret_value(), prefix))
            )
    report.line("some checks failed: fix each ✗ above" if report.failed else "all checks passed")
    return 1 if report.failed else 0
