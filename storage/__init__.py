"""aiosqlite: migrations, jobs, rate limits, usage statistics and privacy. Never imports discord, torch or generation."""

from storage.errors import StorageError
from storage.store import Storage
from storage.types import (
    Admission,
    AuditEntry,
    EffectiveLimit,
    JobRecord,
    NewJob,
    Quota,
    UsageTotals,
    UserLimit,
)

__all__ = [
    "Admission",
    "AuditEntry",
    "EffectiveLimit",
    "JobRecord",
    "NewJob",
    "Quota",
    "Storage",
    "StorageError",
    "UsageTotals",
    "UserLimit",
]
