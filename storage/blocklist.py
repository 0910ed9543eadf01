"""A guild's blocklist: words its admins refuse in prompts, and the audit of every change.

Storage keeps each word exactly as given: the bot normalizes it (NFKC, case, kana) before it
calls, and matches prompts against `words()`. A guild holds at most MAX_BLOCKLIST_WORDS
words; adding one more raises StorageError with code `blocklist_full` (nothing is written).
A word that is empty, longer than MAX_BLOCKLIST_WORD_LENGTH characters or not valid text is
a ValueError.
"""

from __future__ import annotations

import sqlite3

from storage.database import Database, Tx
from storage.errors import StorageError
from storage.jsonvalue import check_text
from storage.timeutil import Clock, from_db, to_db
from storage.types import MAX_BLOCKLIST_WORD_LENGTH, MAX_BLOCKLIST_WORDS, BlocklistAuditEntry

_AUDIT_INSERT = (
    "INSERT INTO blocklist_audit (guild_id, actor_id, action, word, at) VALUES (?, ?, ?, ?, ?)"
)


def check_word(word: str) -> str:
    """A word the blocklist can hold, or a ValueError that says why not."""
    # The isinstance check guards against callers that ignore the annotations.
    if not isinstance(word, str):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ValueError(f"a blocked word must be text, not {type(word).__name__}")
    if not word.strip():
        raise ValueError("a blocked word must not be empty")
    if len(word) > MAX_BLOCKLIST_WORD_LENGTH:
        raise ValueError(
            f"a blocked word may have at most {MAX_BLOCKLIST_WORD_LENGTH} characters, "
            f"not {len(word)}"
        )
    check_text(word, "the blocked word")
    return word


def _audit_from_row(row: sqlite3.Row) -> BlocklistAuditEntry:
    at = from_db(row["at"])
    assert at is not None
    return BlocklistAuditEntry(
        id=row["id"],
        guild_id=row["guild_id"],
        actor_id=row["actor_id"],
        action=row["action"],
        word=row["word"],
        at=at,
    )


class BlocklistRepository:
    """Add, remove and list a guild's blocked words. Every change writes an audit row."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def add(self, guild_id: int, word: str, *, actor_id: int) -> bool:
        """Block a word in a guild. False if it was already blocked (nothing is audited then).

        Raises StorageError(code="blocklist_full") when the guild has MAX_BLOCKLIST_WORDS.
        """
        word = check_word(word)
        now = to_db(self._clock())

        async def work(tx: Tx) -> bool:
            if await tx.fetchone(
                "SELECT 1 FROM blocklist WHERE guild_id = ? AND word = ?", (guild_id, word)
            ):
                return False
            count = await tx.scalar(
                "SELECT COUNT(*) FROM blocklist WHERE guild_id = ?", (guild_id,)
            )
            if count >= MAX_BLOCKLIST_WORDS:
                raise StorageError(
                    f"the blocklist of guild {guild_id} is full ({MAX_BLOCKLIST_WORDS} words); "
                    "remove a word first",
                    code="blocklist_full",
                )
            await tx.execute(
                "INSERT INTO blocklist (guild_id, word, added_by, added_at) VALUES (?, ?, ?, ?)",
                (guild_id, word, actor_id, now),
            )
            await tx.execute(_AUDIT_INSERT, (guild_id, actor_id, "add", word, now))
            return True

        return await self._db.write(work)

    async def remove(self, guild_id: int, word: str, *, actor_id: int) -> bool:
        """Unblock a word in a guild. False if it was not blocked (nothing is audited then)."""
        word = check_word(word)
        now = to_db(self._clock())

        async def work(tx: Tx) -> bool:
            removed = await tx.execute(
                "DELETE FROM blocklist WHERE guild_id = ? AND word = ?", (guild_id, word)
            )
            if not removed:
                return False
            await tx.execute(_AUDIT_INSERT, (guild_id, actor_id, "remove", word, now))
            return True

        return await self._db.write(work)

    async def words(self, guild_id: int) -> list[str]:
        """Every blocked word of a guild, in code-point order."""
        rows = await self._db.read(
            lambda tx: tx.fetchall(
                "SELECT word FROM blocklist WHERE guild_id = ? ORDER BY word", (guild_id,)
            )
        )
        return [row["word"] for row in rows]

    async def audit(self, guild_id: int, limit: int = 20) -> list[BlocklistAuditEntry]:
        """The latest blocklist changes in a guild, newest first."""
        rows = await self._db.read(
            lambda tx: tx.fetchall(
                "SELECT * FROM blocklist_audit WHERE guild_id = ? "
                "ORDER BY at DESC, id DESC LIMIT ?",
                (guild_id, limit),
            )
        )
        return [_audit_from_row(row) for row in rows]
