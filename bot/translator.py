"""Japanese names and descriptions for every slash command, read from the string catalog.

Keys follow the command tree, so a new command needs only catalog entries, no code here:

- command or group: `cmd.<qualified name, spaces as dots>.name` / `.description`
  (`cmd.pokemon.description`, `cmd.ratelimit.set.name`)
- option: `cmd.<command>.<option>.name` / `.description` (`cmd.pokemon.prompt.description`)
- choice: `choice.<value>` (`choice.day`)
- any string given as `locale_str("…", key="some.key")` uses that key instead.

Descriptions in the code are `described("cmd.…")`: the English catalog text carrying its key,
so the catalog is the one source of both languages and they cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

from bot.i18n import catalog, t


def described(key: str) -> app_commands.locale_str:
    """A command or option description: the English catalog text, carrying its catalog key."""
    return app_commands.locale_str(t(key, "en"), key=key)


def catalog_key(
    string: app_commands.locale_str, context: app_commands.TranslationContext[Any, Any]
) -> str | None:
    """The catalog key for one translatable string of the command tree, or None."""
    # `context.data`'s type follows `context.location`, which `in (...)` cannot narrow: Any.
    explicit = string.extras.get("key")
    if explicit:
        return str(explicit)
    data = context.data
    if context.location in (Where.command_name, Where.group_name):
        return f"cmd.{data.qualified_name.replace(' ', '.')}.name"
    if context.location in (Where.command_description, Where.group_description):
        return f"cmd.{data.qualified_name.replace(' ', '.')}.description"
    if context.location in (Where.parameter_name, Where.parameter_description):
        kind = "name" if context.location is Where.parameter_name else "description"
        command = data.command.qualified_name.replace(" ", ".")
        return f"cmd.{command}.{data.name}.{kind}"
    if context.location is Where.choice_name:
        return f"choice.{data.value}"
    return None


class CatalogTranslator(app_commands.Translator):
    """Answers `ja` from `bot/locale/ja.json`; every other locale keeps the English default."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContext[Any, Any],
    ) -> str | None:
        if locale is not discord.Locale.japanese:
            return None
        key = catalog_key(string, context)
        if key is None:
            return None
        entry = catalog("ja").get(key)
        return entry if isinstance(entry, str) else None  # names are never plural entries
