"""Frozen domain values the storage layer hands to the bot. Primitives only: no discord objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeAlias

Period = Literal["hour", "day"]
JobState = Literal["queued", "running", "done", "failed", "cancelled"]
Fault = Literal["ours", "user", "rejected"]
LimitSource = Literal["user", "guild", "global", "owner"]
RefusalReason = Literal["blocked", "rate_limit", "pending"]
AuditAction = Literal["set_user", "clear_user", "set_default", "clear_default"]
BlocklistAction = Literal["add", "remove"]

# A JSON value as json.loads returns it: what a job's `request` and `outcome` hold.
JSON: TypeAlias = str | int | float | bool | list["JSON"] | dict[str, "JSON"] | None

PENDING_STATES: tuple[str, ...] = ("queued", "running")
FINISHED_STATES: tuple[str, ...] = ("done", "failed", "cancelled")
FAULTS: tuple[str, ...] = ("ours", "user", "rejected")

# A request's seed, when it has one: the range the bot gives and accepts (32 bits).
MAX_SEED = 2**32 - 1
# Pictures one job may make (each counts against the quota).
MAX_IMAGES = 16
# Words one guild's blocklist may hold, and the longest word.
MAX_BLOCKLIST_WORDS = 200
MAX_BLOCKLIST_WORD_LENGTH = 100


@dataclass(frozen=True, slots=True)
class NewJob:
    """What admission needs to write a `queued` job row. `guild_id` is None in direct messages.

    `request` is the generation request as a JSON object (the bot converts it to and from the
    generator's type); storage reads only its `seed` (checked: 0..MAX_SEED when present and not
    null) and its text keys (blanked for privacy, see storage/privacy.py). `images` is how
    many pictures the job makes, 1..MAX_IMAGES, and what it counts against the quota.
    """

    user_id: int
    guild_id: int | None
    channel_id: int | None
    request: Mapping[str, JSON]
    images: int = 1
    locale: str = "en"
    interaction_expires_at: datetime | None = None
    parent_job_id: int | None = None
    reply_to_message_id: int | None = None


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One row of the `jobs` table: every column, times as aware UTC datetimes.

    `request` and `outcome` are decoded afresh for each record: changing them changes nothing
    stored. `outcome` is what `mark_done` was given (None before, or if it was given none).
    """

    id: int
    user_id: int
    guild_id: int | None
    channel_id: int | None
    request: dict[str, JSON]
    images: int
    locale: str
    state: JobState
    error_code: str | None
    fault: Fault | None
    outcome: dict[str, JSON] | None
    cancelled_by: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    interaction_expires_at: datetime | None
    progress_message_id: int | None
    result_message_id: int | None
    parent_job_id: int | None
    reply_to_message_id: int | None

    @property
    def pending(self) -> bool:
        """Queued or running."""
        return self.state in PENDING_STATES

    @property
    def prompt_blanked(self) -> bool:
        """The retention policy (or a deletion request) removed the prompt text (or it had none)."""
        return self.request.get("prompt", "") == ""

    @property
    def run_seconds(self) -> float | None:
        """From start to finish, when both are known."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class EffectiveLimit:
    """The limit that applies to one user in one guild, and which level it came from.

    `images` is None only for owners (no limit); 0 means blocked.
    """

    images: int | None
    period: Period
    source: LimitSource

    @property
    def blocked(self) -> bool:
        return self.images == 0


@dataclass(frozen=True, slots=True)
class Quota:
    """A user's standing in the sliding window: `limit`/`remaining` None = unlimited (owners).

    `used`, `remaining` and `limit` count pictures (a job of four pictures uses four).
    `reset_at` is when the next used slot frees (None when nothing is used or unlimited).
    """

    limit: int | None
    period: Period
    used: int
    remaining: int | None
    reset_at: datetime | None
    source: LimitSource


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer of `Storage.admit`: the inserted job, or why not and when to try again.

    A `rate_limit` refusal means `quota.remaining` is fewer than the job's pictures;
    `retry_at` is when enough will have freed (None if the job asks for more than the limit).
    """

    admitted: bool
    job: JobRecord | None
    reason: RefusalReason | None
    quota: Quota
    retry_at: datetime | None


@dataclass(frozen=True, slots=True)
class UserLimit:
    """A per-user override in one guild."""

    guild_id: int
    user_id: int
    images: int
    period: Period
    updated_at: datetime
    updated_by: int | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change to a limit. `actor_id`/`target_user_id` are None once that user's data is deleted.

    `target_user_id` is also None for guild-default changes; old/new values are None when absent.
    """

    id: int
    guild_id: int
    actor_id: int | None
    action: AuditAction
    target_user_id: int | None
    old_images: int | None
    old_period: Period | None
    new_images: int | None
    new_period: Period | None
    at: datetime


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """A guild's jobs over the last N days, by outcome; `images` = pictures of the done jobs."""

    jobs: int
    images: int
    done: int
    failed: int
    cancelled: int
    pending: int
    users: int
    avg_run_seconds: float | None


@dataclass(frozen=True, slots=True)
class BlocklistAuditEntry:
    """One change to a guild's blocklist. `actor_id` is None once that user's data is deleted."""

    id: int
    guild_id: int
    actor_id: int | None
    action: BlocklistAction
    word: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ForgottenUser:
    """What `PrivacyRepository.forget_user` did: the user's queued or running jobs it cancelled
    (oldest first) and the rows it deleted or anonymised (those jobs included)."""

    cancelled: tuple[int, ...]
    deleted: int
