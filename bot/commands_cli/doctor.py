"""`pokemon-bot doctor`: check settings, token, model, device and database; say how to fix each ✗.

`pokemon-bot doctor --quick` checks only the worker's heartbeat file: the Docker healthcheck.
Everything here is read-only for the real deployment: the database is checked on a copy, the
model only in the local cache (the Hub is asked only when online and the model is not cached).
The token is never printed: every line goes through `_Report.line`, which redacts it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from bot.commands_cli.invite import TokenError, application_id_from_token, load_token
from bot.settings import Settings

OK, FAIL, WARN = "✓", "✗", "!"

# The worker touches the heartbeat at least every 10 s; 60 s leaves room for a slow disk or a
# long garbage-collection pause without flapping the container to unhealthy.
HEARTBEAT_MAX_AGE = 60.0

# One denoising step of the full SD 1.x UNet at 512² (batch 2 for guidance) took about 20 s on
# a 2-core x86-64 build machine (docs/PERFORMANCE.md), so 25 steps are about 8 minutes there;
# more cores divide that, but CPU stays minutes per image.
CPU_SECONDS_PER_IMAGE: float | None = 500.0

# What generation/loader.py needs: these components, and the file each cannot do without. The
# others (scheduler, safety checker, feature extractor) fall back to defaults or off when absent.
_PIPELINES = ("StableDiffusionPipeline", "JapaneseStableDiffusionPipeline")
_REQUIRED = ("unet", "vae", "text_encoder", "tokenizer")
_CONFIG_FILE = {
    "scheduler": "scheduler_config.json",
    "feature_extractor": "preprocessor_config.json",
}
_WEIGHTED = {"unet", "vae", "text_encoder", "safety_checker"}
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_HUB_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report: `status` is ✓, ✗ or ! (a warning that does not fail doctor)."""

    status: str
    name: str
    detail: str
    fix: str = ""


class _Report:
    """Prints checks as they finish, with every secret replaced, and remembers whether any failed."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = [s for s in secrets if s]
        self.failed = False

    def add_secret(self, secret: str | None) -> None:
        if secret and secret.strip():
            self.secrets.append(secret.strip())
            # The HMAC part alone is also a secret; the first part is only the public id.
            parts = secret.strip().split(".")
            if len(parts) == 3 and len(parts[2]) >= 6:
                self.secrets.append(parts[2])

    def line(self, text: str) -> None:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "[redacted]")
        print(text, flush=True)

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
        return Settings(), [Check(OK, "settings", "loaded (environment and .env)")], set()
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
        return None, [Check(FAIL, "settings", _one_line(exc), "check the .env file")], set()
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


def _looks_like_path(source: str) -> bool:
    # The loader's rule too: anything that is not exactly `owner/name` is a folder.
    return source.startswith(("/", ".", "~")) or "\\" in source or not _HUB_ID.match(source)


@dataclass(frozen=True, slots=True)
class _Inventory:
    """What model_index.json lists, and what the folder lacks (required and optional parts)."""

    components: dict[str, Any]
    missing: list[str]
    optional_missing: list[str]


def _inventory(folder: Path) -> _Inventory:
    index_path = folder / "model_index.json"
    if not index_path.is_file():
        return _Inventory({}, ["model_index.json"], [])
    try:
        loaded: object = json.loads(index_path.read_text("utf-8"))
        if not isinstance(loaded, dict):
            raise ValueError("not a JSON object")
        # `isinstance` narrows json's Any only to dict[Unknown, Unknown]; JSON keys are strings.
        index = cast("dict[str, Any]", loaded)
    except (OSError, ValueError) as exc:
        return _Inventory({}, [f"a readable model_index.json ({_one_line(exc)})"], [])
    missing: list[str] = []
    optional_missing: list[str] = []
    if index.get("_class_name") not in _PIPELINES:
        missing.append(
            f"a Stable Diffusion pipeline (model_index.json names {index.get('_class_name')})"
        )
    components: dict[str, Any] = {
        key: value
        for key, value in index.items()
        if not key.startswith("_") and isinstance(value, list) and value and value[0] is not None
    }
    for name in sorted(set(components) | set(_REQUIRED)):
        found = missing if name in _REQUIRED else optional_missing
        sub = folder / name
        if not sub.is_dir():
            found.append(f"{name}/")
            continue
        if name == "tokenizer":
            # A sentencepiece tokenizer needs its model file; configs alone are not enough.
            if not any(sub.glob("*.model")) and not (sub / "tokenizer.json").is_file():
                found.append("tokenizer/spiece.model")
            continue
        config = _CONFIG_FILE.get(name, "config.json")
        if not (sub / config).is_file():
            found.append(f"{name}/{config}")
        if name in _WEIGHTED and not any(
            p.name.endswith(_WEIGHT_SUFFIXES) for p in sub.iterdir() if p.is_file()
        ):
            found.append(f"{name}/ weights (*.safetensors or *.bin)")
    return _Inventory(components, missing, optional_missing)


def _check_model(source: str) -> tuple[Check, dict[str, Any] | None]:
    """Where the model comes from, and its components when they could be read."""
    if _looks_like_path(source) or Path(source).expanduser().exists():
        folder = Path(source).expanduser().resolve()
        if not folder.is_dir():
            problem = "is a file, not a model folder" if folder.exists() else "does not exist"
            return Check(
                FAIL,
                "model",
                f"local folder {folder} {problem}",
                "set POKEMON_MODEL to a folder with model_index.json (or to a Hub id such as "
                "svjack/Stable-Diffusion-Pokemon-ja)",
            ), None
        return _check_folder(folder, f"local folder {folder}")
    return _check_hub(source)


def _check_folder(folder: Path, where: str) -> tuple[Check, dict[str, Any] | None]:
    found = _inventory(folder)
    present = {
        name
        for name in found.components
        if not any(m.startswith(f"{name}/") for m in found.missing + found.optional_missing)
    }
    if found.missing:
        lacks = found.missing + found.optional_missing
        return Check(
            FAIL,
            "model",
            f"{where} is incomplete: missing {', '.join(lacks)}",
            "copy the whole checkpoint (every component folder), or delete it and download again",
        ), None
    if found.optional_missing:
        return Check(
            WARN,
            "model",
            f"{where} lacks {', '.join(found.optional_missing)}; the bot runs without them",
            "copy the whole checkpoint if that was not meant",
        ), {name: found.components[name] for name in present}
    return Check(OK, "model", f"{where} ({', '.join(sorted(found.components))})"), found.components


def _check_hub(repo_id: str) -> tuple[Check, dict[str, Any] | None]:
    from huggingface_hub import constants, is_offline_mode, try_to_load_from_cache

    cache = constants.HF_HUB_CACHE
    cached = try_to_load_from_cache(repo_id, "model_index.json")
    if isinstance(cached, str):
        return _check_folder(Path(cached).parent, f"{repo_id} cached in {cache}")
    if is_offline_mode():
        return Check(
            FAIL,
            "model",
            f"{repo_id} is not in the Hugging Face cache ({cache}) and HF_HUB_OFFLINE=1 "
            "forbids downloading it",
            "run once with network access (unset HF_HUB_OFFLINE) to download it, set HF_HOME "
            "to the cache that has it, or point POKEMON_MODEL at a local folder",
        ), None
    from huggingface_hub import model_info
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        model_info(repo_id, timeout=_HUB_TIMEOUT)
    except (RepositoryNotFoundError, GatedRepoError):
        return Check(
            FAIL,
            "model",
            f"{repo_id} is not a model on the Hugging Face Hub (or needs a login)",
            "check POKEMON_MODEL for typos; a local folder must exist on this machine",
        ), None
    except Exception as exc:
        return Check(
            FAIL,
            "model",
            f"{repo_id} is not cached and the Hub cannot be reached: {_one_line(exc)}",
            "check the network (or proxy), or copy a cache into HF_HOME",
        ), None
    return Check(
        OK,
        "model",
        f"{repo_id} is not cached yet but reachable; the first start downloads it "
        f"(several GB) into {cache}",
    ), None


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


# --- device ---------------------------------------------------------------------------------


def _check_device(spec: str) -> Check:
    if spec == "cpu":
        pace = (
            f"about {CPU_SECONDS_PER_IMAGE / 60:.0f} min per 512×512 image on 2 cores"
            if CPU_SECONDS_PER_IMAGE is not None
            else "tens of seconds or more per 512×512 image"
        )
        return Check(OK, "device", f"cpu (float32): {pace}; a GPU is recommended for a live bot")
    # Only generation/ may import torch (ARCHITECTURE.md), so the probe lives there.
    try:
        from generation.loader import describe_device
    except ImportError:
        return Check(
            WARN,
            "device",
            f"{spec}: not checked (this version's generation layer has no device probe)",
            "run `pokemon-bot generate` once to see the device in use",
        )
    try:
        info = describe_device(spec)
    except Exception as exc:
        return Check(
            FAIL,
            "device",
            f"{spec}: {_one_line(exc)}",
            "install the CUDA build of torch and the NVIDIA driver (in Docker: the NVIDIA "
            "container toolkit and the compose GPU reservation), or set POKEMON_DEVICE=cpu",
        )
    return Check(OK, "device", info)


# --- database -------------------------------------------------------------------------------


def _first_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


_DB_FIX = (
    "set POKEMON_DB to a file in a writable folder (in Docker it lives on the data volume, "
    "owned by the image's user)"
)


def _check_creatable(path: Path) -> Check | None:
    """A ✗ when a database that does not exist yet could not be created there, else None."""
    existing = _first_existing(path.parent)
    if not existing.is_dir():
        return Check(
            FAIL, "database", f"{path} cannot be created: {existing} is not a folder", _DB_FIX
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        return Check(
            FAIL, "database", f"{path} cannot be created: {existing} is not writable", _DB_FIX
        )
    return None


def _inspect_existing(path: Path, copy: Path) -> int:
    """Prove the file is writable, copy it, and return its schema version, changing nothing.

    BEGIN IMMEDIATE takes the write lock and ROLLBACK releases it, so nothing is written. The
    copy uses SQLite's backup API, consistent even while the bot writes. One read-write
    connection (closed last) also lets SQLite tidy its -wal/-shm files as usual.
    """
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=5.0)
    try:
        conn.isolation_level = None
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        target = sqlite3.connect(copy)
        try:
            conn.backup(target)
        finally:
            target.close()
        return version
    finally:
        conn.close()


async def _open_with_storage(path: Path, settings: Settings) -> None:
    from storage import Storage

    store = await Storage.open(
        path,
        default_limit=settings.default_limit,
        owner_ids=set(settings.pokemon_owner_ids),
        max_pending=settings.pokemon_user_max_pending,
    )
    await store.close()


def _check_database(settings: Settings) -> Check:
    path = settings.pokemon_db.expanduser()
    if path.is_dir():
        return Check(FAIL, "database", f"{path} is a folder, not a file", _DB_FIX)
    exists = path.exists()
    if not exists:
        problem = _check_creatable(path)
        if problem is not None:
            return problem
    from storage import StorageError

    with tempfile.TemporaryDirectory(prefix="pokemon-doctor-") as tmp:
        copy = Path(tmp) / "check.sqlite3"
        version = 0
        if exists:
            try:
                version = _inspect_existing(path, copy)
            except sqlite3.Error as exc:
                return Check(
                    FAIL,
                    "database",
                    f"{path} cannot be opened for writing: {_one_line(exc)}",
                    f"{_DB_FIX}; if it is not a database, restore a backup or move it away",
                )
        try:
            # The storage layer migrates the copy exactly as `run` would migrate the real file.
            asyncio.run(_open_with_storage(copy, settings))
        except StorageError as exc:
            # The message names the copy; the operator knows only the real file.
            reason = _one_line(exc).replace(str(copy), str(path))
            if getattr(exc, "code", "") == "schema_too_new":
                return Check(
                    FAIL,
                    "database",
                    f"written by a newer pokemon-bot: {reason}",
                    "run the newer release again, or restore a backup made by this version "
                    "(pokemon-bot backup)",
                )
            return Check(
                FAIL,
                "database",
                f"{path} cannot be used: {reason}",
                "restore a backup (pokemon-bot backup makes them), or move the file away to "
                "start a new database",
            )
        migrated = _user_version(copy)
    if not exists:
        return Check(OK, "database", f"{path} will be created at start (schema v{migrated})")
    if version == migrated:
        return Check(OK, "database", f"{path} is writable and migrated (schema v{version})")
    return Check(
        OK,
        "database",
        f"{path} is writable (schema v{version}); migrations to v{migrated} applied cleanly "
        "to a copy and will run at start",
    )


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


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
        return Check(FAIL, "heartbeat", f"{path}: {_one_line(exc)}", "check the path")
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


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """Run one check; an unexpected error is that check's ✗, not a traceback for the operator."""
    try:
        return check()
    except Exception as exc:
        return Check(FAIL, name, f"check failed unexpectedly: {_one_line(exc)}")


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
    report = _Report([])
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
        if "pokemon_model" not in bad:
            try:
                model_check, components = _check_model(settings.pokemon_model)
            except Exception as exc:
                model_check = Check(FAIL, "model", f"check failed unexpectedly: {_one_line(exc)}")
            report.show(model_check)
        report.show(_guarded("safety checker", lambda: _check_safety(settings, components)))
        if "pokemon_device" not in bad:
            report.show(_guarded("device", lambda: _check_device(settings.pokemon_device)))
        if "pokemon_db" not in bad:
            report.show(_guarded("database", lambda: _check_database(settings)))
    report.line("some checks failed: fix each ✗ above" if report.failed else "all checks passed")
    return 1 if report.failed else 0
