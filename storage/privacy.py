"""Privacy: prompt retention and deleting one user's data on request.

What is user text in a job: a job's `request` and `outcome` are JSON objects storage does not
interpret, except for this rule. **A key whose name ends in `prompt` or `_used`, at any depth,
holds user text**: `prompt`, `negative_prompt` in the request; `prompt_used`, `negative_used`
(the text generation actually used, e.g. after translation) in the outcome. Blanking replaces
such a key's value with `""`, whatever it was (a null stays null); every other key (seeds,
steps, sizes, timings, ...) stays. Name any new key that holds user text to match the rule.

Choices:
- Retention blanks the user text of finished jobs older than the retention period; the rows
  stay, so counts, quotas and statistics are unchanged. Unfinished jobs keep their text
  because it is needed to run them.
- Forgetting a user (`forget_user`: `/privacy`'s button and `pokemon-bot forget-user`) is one
  transaction: their queued and running jobs are listed as cancelled and deleted with the
  rest, so no process sees them pending afterwards. A bot that runs one of them finds its row
  gone, which it treats as cancelled: it never posts the picture, and takes a job still
  waiting out of its generator's queue (`bot.jobs`).
- Deleting a user removes their jobs, their own `/settings` defaults and the notices shown to
  them, and the per-user limits where they are the subject. The
  audit logs (limits and blocklist) are admin records of the guild, so their rows stay, but
  the user's id is replaced by NULL wherever it appears (as the actor, the target, the one who
  added a blocked word, or the one who cancelled someone's job). Other users' regenerations
  of this user's jobs, and regenerations of those, stay (they are the other users' usage)
  with the copied text blanked and the link to the deleted parent removed.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import cast

from storage.database import Database, Tx
from storage.timeutil import Clock, to_db
from storage.types import JSON, ForgottenUser
from storage.user_settings import delete_user_settings

log = logging.getLogger(__name__)

# The rule above, in Python. The same rule in SQL (to find the rows that hold text left to
# blank) is the EXISTS (json_tree ...) in the two UPDATEs below; `blank_texts(json)` is the
# Python rewrite, registered on the connection by `install_functions`.
TEXT_KEY_SUFFIXES = ("prompt", "_used")


def is_text_key(key: str) -> bool:
    """Whether this key of a request or outcome holds user text (see the module docstring)."""
    return key.endswith(TEXT_KEY_SUFFIXES)


def blank_texts(value: JSON) -> JSON:
    """A copy of `value` with the value of every text key, at any depth, replaced by ''."""
    if isinstance(value, dict):
        return {
            key: ("" if is_text_key(key) and item is not None else blank_texts(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [blank_texts(item) for item in value]
    return value


def _blank_json_text(text: str | None) -> str | None:
    """blank_texts on JSON text, for SQLite (NULL stays NULL)."""
    if text is None:
        return None
    blanked = blank_texts(cast(JSON, json.loads(text)))
    return json.dumps(blanked, ensure_ascii=False, separators=(",", ":"))


async def install_functions(db: Database) -> None:
    """Register `blank_texts(json)` on the connection, for the UPDATEs below."""
    # aiosqlite leaves `func: Callable` unparameterized, hence the ignore.
    await db.connection.create_function(  # pyright: ignore[reportUnknownMemberType]
        "blank_texts", 1, _blank_json_text, deterministic=True
    )


class PrivacyRepository:
    """Retention and delete-my-data."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def blank_old_prompts(self, retention_days: int) -> int:
        """Blank the user text of finished jobs created more than `retention_days` ago.

        Returns how many rows changed (rows already blank are not counted again).
        """
        # The isinstance checks guard against callers that ignore the annotations (config, CLI).
        if isinstance(retention_days, bool) or not isinstance(retention_days, int):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(f"retention_days must be a whole number, not {retention_days!r}")
        if retention_days < 1:
            raise ValueError("retention_days must be 1 or more")
        cutoff = to_db(self._clock() - timedelta(days=retention_days))
        changed = await self._db.write(
            lambda tx: tx.execute(
                "UPDATE jobs SET request = blank_texts(request), outcome = blank_texts(outcome) "
                "WHERE created_at < ? AND state IN ('done', 'failed', 'cancelled') "
                "AND EXISTS (SELECT 1 FROM json_tree(json_array(json(request), json(outcome))) "
                "WHERE (key GLOB '*prompt' OR key GLOB '*_used') AND type != 'null' "
                "AND NOT (type = 'text' AND atom = ''))",
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
        """Delete one user's jobs and limits and anonymise them in the audit logs.

        Returns the number of rows deleted or anonymised.
        """
        total = await self._db.write(lambda tx: _delete_user(tx, user_id))
        log.info("deleted the data of one user (%s rows)", total)
        return total

    async def forget_user(self, user_id: int) -> ForgottenUser:
        """Cancel the user's queued and running jobs, then delete their data (`delete_user`),
        in one transaction: no moment exists where their jobs are pending but their data half
        gone, and nobody can admit or start one in between. Deleting a pending row is its
        cancellation: every process that runs jobs treats a row that went as cancelled."""

        async def work(tx: Tx) -> ForgottenUser:
            rows = await tx.fetchall(
                "SELECT id FROM jobs WHERE user_id = ? AND state IN ('queued', 'running') "
                "ORDER BY created_at, id",
                (user_id,),
            )
            cancelled = tuple(int(row["id"]) for row in rows)
            return ForgottenUser(cancelled, await _delete_user(tx, user_id))

        forgotten = await self._db.write(work)
        log.info(
            "forgot one user: %s pending jobs cancelled, %s rows deleted",
            len(forgotten.cancelled),
            forgotten.deleted,
        )
        return forgotten


async def _delete_user(tx: Tx, user_id: int) -> int:
    """`delete_user`'s statements, inside the caller's transaction."""
    # Others' regenerations copied this user's prompt, and so did regenerations of those:
    # blank every descendant before the parent goes (ON DELETE SET NULL then clears the direct
    # links). (The CTE sits in a subquery: sqlite3 reports no rowcount for a statement that
    # starts with WITH.)
    total = await tx.execute(
        "UPDATE jobs SET request = blank_texts(request), outcome = blank_texts(outcome) "
        "WHERE user_id != ? "
        "AND EXISTS (SELECT 1 FROM json_tree(json_array(json(request), json(outcome))) "
        "WHERE (key GLOB '*prompt' OR key GLOB '*_used') AND type != 'null' "
        "AND NOT (type = 'text' AND atom = '')) "
        "AND id IN (WITH RECURSIVE copies (id) AS (SELECT id FROM jobs WHERE user_id = ? "
        "UNION SELECT jobs.id FROM jobs JOIN copies ON jobs.parent_job_id = copies.id) "
        "SELECT id FROM copies)",
        (user_id, user_id),
    )
    total += await tx.execute("DELETE FROM jobs WHERE user_id = ?", (user_id,))
    total += await tx.execute("DELETE FROM user_limits WHERE user_id = ?", (user_id,))
    total += await delete_user_settings(tx, user_id)
    for sql in _ANONYMISE:
        total += await tx.execute(sql, (user_id,))
    return total


# Where a user's id appears in rows that are not theirs to delete.
_ANONYMISE = (
    "UPDATE limit_audit SET actor_id = NULL WHERE actor_id = ?",
    "UPDATE limit_audit SET target_user_id = NULL WHERE target_user_id = ?",
    "UPDATE guild_limits SET updated_by = NULL WHERE updated_by = ?",
    "UPDATE user_limits SET updated_by = NULL WHERE updated_by = ?",
    "UPDATE jobs SET cancelled_by = NULL WHERE cancelled_by = ?",
    "UPDATE blocklist SET added_by = NULL WHERE added_by = ?",
    "UPDATE blocklist_audit SET actor_id = NULL WHERE actor_id = ?",
)
