"""Privacy: prompt retention and deleting one user's data on request.

Choices:
- Retention blanks `prompt` and `negative_prompt` of finished jobs older than the retention
  period; the rows stay, so counts, quotas and statistics are unchanged. Unfinished jobs keep
  their text because it is needed to run them.
- Deleting a user removes their jobs and the per-user limits where they are the subject. The
  audit log is an admin record of the guild, so its rows stay, but the user's id is replaced
  by NULL wherever they appear (as the actor or as the target). Other users' regenerations of
  this user's jobs, and regenerations of those, stay (they are the other users' usage) with
  the copied prompt blanked and the link to the deleted parent removed.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from storage.database import Database, Tx
from storage.timeutil import Clock, to_db

log = logging.getLogger(__name__)


class PrivacyRepository:
    """Retention and delete-my-data."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def blank_old_prompts(self, retention_days: int) -> int:
        """Blank prompt text of finished jobs created more than `retention_days` ago; returns rows."""
        # The isinstance checks guard against callers that ignore the annotations (config, CLI).
        if isinstance(retention_days, bool) or not isinstance(retention_days, int):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(f"retention_days must be a whole number, not {retention_days!r}")
        if retention_days < 1:
            raise ValueError("retention_days must be 1 or more")
        cutoff = to_db(self._clock() - timedelta(days=retention_days))
        changed = await self._db.write(
            lambda tx: tx.execute(
                "UPDATE jobs SET prompt = '', negative_prompt = '' "
                "WHERE created_at < ? AND state IN ('done', 'failed', 'cancelled') "
                "AND (prompt != '' OR negative_prompt != '')",
                (cutoff,),
            )
        )
        if changed:
            log.info(
                "retention: blanked the prompts of %s jobs older than %s days",
                changed,
                retention_days,
            )
        return changed

    async def delete_user(self, user_id: int) -> int:
        """Delete one user's jobs and limits and anonymise them in the audit log.

        Returns the number of rows deleted or anonymised.
        """

        async def work(tx: Tx) -> int:
            # Others' regenerations copied this user's prompt, and so did regenerations of
            # those: blank every descendant before the parent goes (ON DELETE SET NULL then
            # clears the direct links).
            # (The CTE sits in a subquery: sqlite3 reports no rowcount for a statement that
            # starts with WITH.)
            total = await tx.execute(
                "UPDATE jobs SET prompt = '', negative_prompt = '' WHERE user_id != ? AND id IN ("
                "WITH RECURSIVE copies (id) AS (SELECT id FROM jobs WHERE user_id = ? "
                "UNION SELECT jobs.id FROM jobs JOIN copies ON jobs.parent_job_id = copies.id) "
                "SELECT id FROM copies)",
                (user_id, user_id),
            )
            total += await tx.execute("DELETE FROM jobs WHERE user_id = ?", (user_id,))
            total += await tx.execute("DELETE FROM user_limits WHERE user_id = ?", (user_id,))
            total += await tx.execute(
                "UPDATE limit_audit SET actor_id = NULL WHERE actor_id = ?", (user_id,)
            )
            total += await tx.execute(
                "UPDATE limit_audit SET target_user_id = NULL WHERE target_user_id = ?",
                (user_id,),
            )
            total += await tx.execute(
                "UPDATE guild_limits SET updated_by = NULL WHERE updated_by = ?", (user_id,)
            )
            total += await tx.execute(
                "UPDATE user_limits SET updated_by = NULL WHERE updated_by = ?", (user_id,)
            )
            return total

        total = await self._db.write(work)
        log.info("deleted the data of one user (%s rows)", total)
        return total
