"""aiosqlite: migrations, jobs, rate limits, usage statistics, privacy and the blocklist.

Never imports discord, torch or generation.
"""

from storage.errors import StorageError
from storage.store import Storage
from storage.types import (
    JSON,
    MAX_BLOCKLIST_WORD_LENGTH,
    MAX_BLOCKLIST_WORDS,
    MAX_IMAGES,
    MAX_SEED,
    Admission,
    AuditEntry,
    BlocklistAuditEntry,
    EffectiveLimit,
    ForgottenUser,
    JobRecord,
    NewJob,
    Quota,
    UsageTotals,
    UserLimit,
)
from storage.user_settings import UserDefaults

__all__ = [
    "JSON",
    "MAX_BLOCKLIST_WORDS",
    "MAX_BLOCKLIST_WORD_LENGTH",
    "MAX_IMAGES",
    "MAX_SEED",
    "Admission",
    "AuditEntry",
    "BlocklistAuditEntry",
    "EffectiveLimit",
    "ForgottenUser",
    "JobRecord",
    "NewJob",
    "Quota",
    "Storage",
    "StorageError",
    "UsageTotals",
    "UserDefaults",
    "UserLimit",
]
