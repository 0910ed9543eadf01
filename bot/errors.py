"""Errors the bot turns into one localized, user-safe message (never a traceback)."""

from __future__ import annotations

import secrets

from bot.i18n import t


class UserFacingError(Exception):
    """A refusal or failure the user should read. `key` is a catalog key; `params` fill it.

    `refund` says the quota should be given back (the input was rejected or the failure was ours).
    `code` is what a job row refused this way records (default: the key without `error.`).
    """

    def __init__(
        self, key: str, /, *, refund: bool = False, code: str | None = None, **params: object
    ) -> None:
        super().__init__(key)
        self.key = key
        self.params = params
        self.refund = refund
        self.code = code or key.removeprefix("error.")

    def localized(self, locale: object) -> str:
        return t(self.key, locale, **self.params)


def new_error_id() -> str:
    """A short id the user can quote and the operator can grep for (an unexpected error)."""
    return secrets.token_hex(4)
