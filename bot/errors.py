"""Errors the bot turns into one localized, user-safe message (never a traceback)."""

from __future__ import annotations

from bot.i18n import t


class UserFacingError(Exception):
    """A refusal or failure the user should read. `key` is a catalog key; `params` fill it.

    `refund` says the quota should be given back (the input was rejected or the failure was ours).
    """

    def __init__(self, key: str, /, *, refund: bool = False, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params
        self.refund = refund

    def localized(self, locale: object) -> str:
        return t(self.key, locale, **self.params)
