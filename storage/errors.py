"""The one error type the storage layer raises: a clear, single-line message and a stable code."""

from __future__ import annotations


class StorageError(Exception):
    """A database failure the caller can report as one line.

    `code` is stable for callers that branch on it: `busy`, `full`, `readonly`, `corrupt`,
    `schema_too_new`, `bad_migration`, `cannot_open`, `constraint`, `backup_failed`, `io`,
    `closed`, `blocklist_full` (the guild's blocklist holds its maximum of words) or `failed`.
    """

    def __init__(self, message: str, *, code: str = "failed") -> None:
        super().__init__(message)
        self.code = code
