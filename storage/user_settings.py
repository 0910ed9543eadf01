"""Each user's own defaults for `/pokemon` (`/settings`), and the one-time notices shown.

A user's defaults are one row of `user_settings`; a field left None means "the server's". The
bot decides what a value means and whether today's limits allow it; storage only keeps it
within the same bounds the schema checks (0005_user_settings.sql), raising ValueError outside
them. `reset` removes the row. Both tables are deleted with the user's data
(`PrivacyRepository.forget_user`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from storage.database import Database, Tx
from storage.timeutil import Clock, to_db

SizeChoice = Literal["square", "portrait", "landscape"]
SIZE_CHOICES: tuple[str, ...] = get_args(SizeChoice)
MAX_DEFAULT_COUNT = 4
MAX_DEFAULT_NEGATIVE = 1000  # characters, as /pokemon's negative option allows (bot.validation)


@dataclass(frozen=True, slots=True)
class UserDefaults:
    """One user's defaults; None: not set (the server's default applies)."""

    size: str | None = None
    count: int | None = None
    translate: bool | None = None
    negative: str | None = None

    @property
    def empty(self) -> bool:
        return self == UserDefaults()


def check_defaults(defaults: UserDefaults) -> None:
    """ValueError when a field is outside what storage keeps."""
    if defaults.size is not None and defaults.size not in SIZE_CHOICES:
        raise ValueError(f"size must be one of {SIZE_CHOICES}, not {defaults.size!r}")
    count = defaults.count
    if count is not None and (
        isinstance(count, bool)
        or not isinstance(count, int)  # pyright: ignore[reportUnnecessaryIsInstance]
        or not 1 <= count <= MAX_DEFAULT_COUNT
    ):
        raise ValueError(f"count must be a whole number from 1 to {MAX_DEFAULT_COUNT}")
    if defaults.negative is not None and len(defaults.negative) > MAX_DEFAULT_NEGATIVE:
        raise ValueError(f"negative must be at most {MAX_DEFAULT_NEGATIVE} characters")


class UserSettingsRepository:
    """`/settings`: read, save and reset one user's defaults; remember one-time notices."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def get(self, user_id: int) -> UserDefaults:
        """The user's defaults (all None when they set none)."""
        row = await self._db.read(
            lambda tx: tx.fetchone(
                "SELECT size, count, translate, negative FROM user_settings WHERE user_id = ?",
                (user_id,),
            )
        )
        if row is None:
            return UserDefaults()
        translate = row["translate"]
        return UserDefaults(
            size=row["size"],
            count=row["count"],
            translate=None if translate is None else bool(translate),
            negative=row["negative"],
        )

    async def save(self, user_id: int, defaults: UserDefaults) -> UserDefaults:
        """Store `defaults` as the user's whole set (None fields cleared); an all-None set
        removes the row. Returns what is stored."""
        check_defaults(defaults)
        if defaults.empty:
            await self.reset(user_id)
            return defaults
        translate = None if defaults.translate is None else int(defaults.translate)
        now = to_db(self._clock())
        await self._db.write(
            lambda tx: tx.execute(
                "INSERT INTO user_settings (user_id, size, count, translate, negative, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
                "size = excluded.size, count = excluded.count, translate = excluded.translate, "
                "negative = excluded.negative, updated_at = excluded.updated_at",
                (user_id, defaults.size, defaults.count, translate, defaults.negative, now),
            )
        )
        return defaults

    async def reset(self, user_id: int) -> bool:
        """Forget the user's defaults; True when there were any."""
        deleted = await self._db.write(
            lambda tx: tx.execute("DELETE FROM user_settings WHERE user_id = ?", (user_id,))
        )
        return deleted > 0

    async def seen(self, user_id: int, guild_id: int, notice: str) -> bool:
        """Whether `notice` was shown to this user in this server."""
        row = await self._db.read(
            lambda tx: tx.fetchone(
                "SELECT 1 FROM notices_shown WHERE user_id = ? AND guild_id = ? AND notice = ?",
                (user_id, guild_id, notice),
            )
        )
        return row is not None

    async def first_time(self, user_id: int, guild_id: int, notice: str) -> bool:
        """Record that `notice` is shown to this user in this server; True only the first time
        (atomic: two jobs finishing together do not both show it)."""
        now = to_db(self._clock())
        inserted = await self._db.write(
            lambda tx: tx.execute(
                "INSERT INTO notices_shown (user_id, guild_id, notice, shown_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (user_id, guild_id, notice, now),
            )
        )
        return inserted > 0


async def delete_user_settings(tx: Tx, user_id: int) -> int:
    """The user's defaults and notices, inside the caller's transaction (forgetting a user)."""
    total = await tx.execute("DELETE FROM user_settings WHERE user_id = ?", (user_id,))
    total += await tx.execute("DELETE FROM notices_shown WHERE user_id = ?", (user_id,))
    return total
