"""Frozen domain values the storage layer hands to the bot. Primitives only: no discord objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Period = Literal["hour", "day"]
JobState = Literal["queued", "running", "done", "failed", "cancelled"]
Fault = Literal["ours", "user", "rejected"]
LimitSource = Literal["user", "guild", "global", "owner"]
RefusalReason = Literal["blocked", "rate_limit", "pending"]
AuditAction = Literal["set_user", "clear_user", "set_default", "clear_default"]

PENDING_STATES: tuple[str, ...] = ("queued", "running")
FINISHED_STATES: tuple[str, ...] = ("done", "failed", "cancelled")
FAULTS: tuple[str, ...] = ("ours", "user", "rejected")

# SQLite INTEGER is signed 64-bit; a larger seed cannot be stored.
MAX_SEED = 2**63 - 1


@dataclass(frozen=True, slots=True)
class NewJob:
    """What admission needs to write a `queued` job row. `guild_id` is None in direct messages."""

    user_id: int
    guild_id: int | None
    channel_id: int | None
    prompt: str
    negative_prompt: str
    seed: int
    steps: int
    guidance: float
    width: int
    height: int
    scheduler: str
    locale: str = "en"
    interaction_expires_at: datetime | None = None
    parent_job_id: int | None = None
    reply_to_message_id: int | None = None


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One row of the `jobs` table: every column, times as aware UTC datetimes."""

    id: int
    user_id: int
    guild_id: int | None
    channel_id: int | None
    prompt: str
    negative_prompt: str
    seed: int
    steps: int
    guidance: float
    width: int
    height: int
    scheduler: str
    locale: str
    state: JobState
    error_code: str | None
    fault: Fault | None
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
        """The retention policy (or a deletion request) removed the prompt text."""
        return self.prompt == ""

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
    """The answer of `Storage.admit`: the inserted job, or why not and when to try again."""

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
    """A guild's jobs over the last N days, by outcome."""

    jobs: int
    done: int
    failed: int
    cancelled: int
    pending: int
    users: int
    avg_run_seconds: float | None
