"""Sync slash commands only when the command set changed.

Creating commands counts against a daily quota (200 per guild), so the translated payloads
(names, descriptions, options, localizations, permissions) are hashed and the hash of the last
successful sync is kept next to the database in `<db>.commands-hash`, one entry per
application and scope (global, or the development guild).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, cast

import discord
from discord import app_commands

log = logging.getLogger(__name__)


def hash_file_for(db_path: Path) -> Path:
    """Where the hashes of synced command sets live: beside the database."""
    return db_path.with_name(db_path.name + ".commands-hash")


async def command_payloads(
    tree: app_commands.CommandTree[Any], guild: discord.abc.Snowflake | None = None
) -> list[dict[str, Any]]:
    """Exactly what `tree.sync(guild=…)` would send, translations included."""
    commands = tree.get_commands(guild=guild)  # with no type: the same list sync() uploads
    translator = tree.translator
    if translator is None:
        return [command.to_dict(tree) for command in commands]
    return [await command.get_translated_payload(tree, translator) for command in commands]


def payload_hash(payloads: list[dict[str, Any]]) -> str:
    """A stable hash of command payloads (key order and command order do not matter)."""
    ordered = sorted(payloads, key=lambda p: (p.get("type", 1), p["name"]))
    text = json.dumps(ordered, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read(path: Path) -> dict[str, str]:
    try:
        data: object = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    # `isinstance` narrows json's Any only to dict[Unknown, Unknown]; `_write` wrote str -> str.
    return cast("dict[str, str]", data)


def _write(path: Path, data: dict[str, str]) -> None:
    # Write then rename, so a crash mid-write never leaves a hash that matches nothing.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", "utf-8")
    os.replace(tmp, path)


async def sync_if_changed(
    tree: app_commands.CommandTree[Any],
    hash_file: Path,
    *,
    application_id: int,
    guild_id: int | None = None,
) -> bool:
    """Sync globally, or to `guild_id` (instant; global commands copied there), if the command
    set differs from the last successful sync. Returns whether a sync was sent."""
    guild = discord.Object(guild_id) if guild_id is not None else None
    if guild is not None:
        tree.copy_global_to(guild=guild)
    scope = f"{application_id}:{'global' if guild_id is None else f'guild:{guild_id}'}"
    digest = payload_hash(await command_payloads(tree, guild))
    known = _read(hash_file)
    if known.get(scope) == digest:
        log.info("commands unchanged (%s); not syncing", scope)
        return False
    synced = await tree.sync(guild=guild)
    known[scope] = digest
    _write(hash_file, known)
    log.info("synced %d commands (%s)", len(synced), scope)
    return True
