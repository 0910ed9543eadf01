"""`Storage`: the one object the bot holds; owns the connection and the repositories."""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path
from types import TracebackType

from storage.admission import admit
from storage.blocklist import BlocklistRepository
from storage.database import DEFAULT_BACKOFF, DEFAULT_BUSY_TIMEOUT_MS, DEFAULT_RETRIES, Database
from storage.jobs import JobRepository
from storage.limits import LimitRepository, check_limit
from storage.privacy import PrivacyRepository, install_functions
from storage.timeutil import Clock, system_clock
from storage.types import Admission, NewJob
from storage.usage import UsageRepository
from storage.user_settings import UserSettingsRepository

log = logging.getLogger(__name__)


class Storage:
    """The bot's database. Open with `await Storage.open(path, ...)`; close with `close()`."""

    def __init__(
        self,
        db: Database,
        *,
        default_limit: tuple[int, str],
        owner_ids: Collection[int],
        max_pending: int,
        clock: Clock,
    ) -> None:
        self.db = db
        self.default_limit = check_limit(*default_limit)
        self.owner_ids = frozenset(owner_ids)
        self.max_pending = max_pending
        self.clock = clock
        self.jobs = JobRepository(db, clock)
        self.limits = LimitRepository(
            db, clock, owner_ids=self.owner_ids, default=self.default_limit
        )
        self.usage = UsageRepository(db, clock)
        self.privacy = PrivacyRepository(db, clock)
        self.blocklist = BlocklistRepository(db, clock)
        self.user_settings = UserSettingsRepository(db, clock)

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        default_limit: tuple[int, str] = (20, "day"),
        owner_ids: Collection[int] = (),
        max_pending: int = 2,
        clock: Clock | None = None,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
    ) -> Storage:
        """Open (creating folders and file), migrate to the latest schema, and connect.

        `default_limit` is the global (images, "hour"|"day"); `clock()` returns aware UTC.
        Raises StorageError (one line) when the file cannot be used.
        """
        check_limit(*default_limit)
        # The isinstance checks guard against callers that ignore the annotations (config, CLI).
        if (
            isinstance(max_pending, bool)
            or not isinstance(max_pending, int)  # pyright: ignore[reportUnnecessaryIsInstance]
            or max_pending < 1
        ):
            raise ValueError(f"max_pending must be a whole number, 1 or more, not {max_pending!r}")
        db = await Database.open(
            path, busy_timeout_ms=busy_timeout_ms, retries=retries, backoff=backoff
        )
        try:
            await install_functions(db)
        except BaseException:
            await db.close()
            raise
        log.info("database %s open", db.path)
        return cls(
            db,
            default_limit=default_limit,
            owner_ids=owner_ids,
            max_pending=max_pending,
            clock=clock or system_clock,
        )

    @property
    def path(self) -> Path:
        return self.db.path

    async def admit(self, new_job: NewJob) -> Admission:
        """Atomically check the user's limits and insert the job as `queued` if allowed."""
        return await admit(
            self.db,
            self.clock,
            new_job,
            owner_ids=self.owner_ids,
            default=self.default_limit,
            max_pending=self.max_pending,
        )

    async def data_version(self) -> int:
        """A number that changes when another connection (another process, such as
        `pokemon-bot forget-user`) commits a change to the file; this one's own commits leave
        it as it is. A cheap way to notice changes made from outside (`PRAGMA data_version`)."""
        return int(await self.db.read(lambda tx: tx.scalar("PRAGMA data_version")))

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        await self.db.close()

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
