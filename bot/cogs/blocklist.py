"""`/blocklist add|remove|show`: server admins refuse words in prompts and negative prompts.

Admin-only like `/ratelimit`: hidden from non-admins by `default_permissions(manage_guild=True)`
and checked again on every run with `admin_only()`. Words are stored normalized
(`bot.moderation.normalize`: NFKC, case, katakana → hiragana), so `ピカチュウ`, `ﾋﾟｶﾁｭｳ` and
`ぴかちゅう` are one entry, and every change is audited in storage with the acting admin's id.
The job service checks prompts against the list on its one way in (`/pokemon`, 🔁, buttons,
jobs resumed after a restart).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserFacingError
from bot.i18n import t
from bot.messaging import escape_user_text, relative
from bot.moderation import normalize
from bot.permissions import admin_only
from bot.translator import described
from bot.validation import text_option
from storage import MAX_BLOCKLIST_WORD_LENGTH, StorageError

if TYPE_CHECKING:
    from bot.client import PokemonBot

log = logging.getLogger(__name__)

SHOW_MAX_CHARS = 1500  # the list in one message (2000 characters), with its header
AUDIT_LINES = 5  # the latest changes `/blocklist show` lists under the words


def _word(value: object) -> str:
    """The `word` option, checked and normalized."""
    word = normalize(text_option(value))
    if not word:
        raise UserFacingError("error.blocklist_word_empty")
    if len(word) > MAX_BLOCKLIST_WORD_LENGTH:
        raise UserFacingError("error.blocklist_word_too_long", max=MAX_BLOCKLIST_WORD_LENGTH)
    return word


def _guild_id(interaction: discord.Interaction[PokemonBot]) -> int:
    if interaction.guild_id is None:  # the group is guild_only
        raise app_commands.NoPrivateMessage
    return interaction.guild_id


class BlocklistCog(commands.Cog):
    """The `/blocklist` admin group."""

    blocklist = app_commands.Group(
        name="blocklist",
        description=described("cmd.blocklist.description"),
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: PokemonBot) -> None:
        self.bot = bot

    @blocklist.command(name="add", description=described("cmd.blocklist.add.description"))
    @app_commands.describe(word=described("cmd.blocklist.add.word.description"))
    @admin_only()
    async def add(
        self,
        interaction: discord.Interaction[PokemonBot],
        word: app_commands.Range[str, 1, MAX_BLOCKLIST_WORD_LENGTH],
    ) -> None:
        """Refuse a word in this server's prompts."""
        guild_id = _guild_id(interaction)
        normalized = _word(word)
        try:
            added = await interaction.client.store.blocklist.add(
                guild_id, normalized, actor_id=interaction.user.id
            )
        except StorageError as exc:
            if exc.code != "blocklist_full":
                raise
            raise UserFacingError("error.blocklist_full") from None
        shown = escape_user_text(normalized)
        key = "blocklist.added" if added else "blocklist.already"
        if added:
            log.info("blocklist add guild=%s by=%s", guild_id, interaction.user.id)
        await interaction.response.send_message(
            t(key, interaction.locale, word=shown), ephemeral=True
        )

    @blocklist.command(name="remove", description=described("cmd.blocklist.remove.description"))
    @app_commands.describe(word=described("cmd.blocklist.remove.word.description"))
    @admin_only()
    async def remove(
        self,
        interaction: discord.Interaction[PokemonBot],
        word: app_commands.Range[str, 1, MAX_BLOCKLIST_WORD_LENGTH],
    ) -> None:
        """Allow a blocked word again."""
        guild_id = _guild_id(interaction)
        normalized = _word(word)
        removed = await interaction.client.store.blocklist.remove(
            guild_id, normalized, actor_id=interaction.user.id
        )
        if removed:
            log.info("blocklist remove guild=%s by=%s", guild_id, interaction.user.id)
        key = "blocklist.removed" if removed else "blocklist.not_found"
        text = t(key, interaction.locale, word=escape_user_text(normalized))
        await interaction.response.send_message(text, ephemeral=True)

    @blocklist.command(name="show", description=described("cmd.blocklist.show.description"))
    @admin_only()
    async def show(self, interaction: discord.Interaction[PokemonBot]) -> None:
        """List this server's blocked words (only the admin sees them)."""
        guild_id = _guild_id(interaction)
        locale = interaction.locale
        store = interaction.client.store
        words = await store.blocklist.words(guild_id)
        if not words:
            lines = [t("blocklist.empty", locale)]
        else:
            lines = [t("blocklist.header", locale, count=len(words))]
            shown = 0
            for word in words:
                line = f"- {escape_user_text(word)}"
                if sum(len(x) + 1 for x in lines) + len(line) > SHOW_MAX_CHARS:
                    break
                lines.append(line)
                shown += 1
            if shown < len(words):
                lines.append(t("blocklist.more", locale, count=len(words) - shown))
        audit = await store.blocklist.audit(guild_id, limit=AUDIT_LINES)
        if audit:  # who changed what, as `/ratelimit` changes are recorded
            lines.append(t("blocklist.audit_header", locale))
            for entry in audit:
                actor = (
                    f"<@{entry.actor_id}>"
                    if entry.actor_id is not None
                    else t("blocklist.audit_unknown_actor", locale)
                )
                lines.append(
                    t(
                        f"blocklist.audit_{entry.action}",
                        locale,
                        when=relative(entry.at),
                        actor=actor,
                        word=escape_user_text(entry.word, 100),
                    )
                )
        await interaction.response.send_message("\n".join(lines), ephemeral=True)


async def setup(bot: PokemonBot) -> None:
    """Extension entry point."""
    await bot.add_cog(BlocklistCog(bot))
