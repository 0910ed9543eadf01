"""Logging, configured once in the entry point: stdlib, the thread name in every line, secrets redacted.

discord.py logs request URLs at DEBUG, and interaction callbacks and followups carry the
interaction token in the path (`/interactions/{id}/{token}/callback`, `/webhooks/{app}/{token}`).
A filter on our handler rewrites every record before it is written, so neither the bot token
nor an interaction token reaches a log file whatever level or logger produced it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import TextIO

REDACTED = "[REDACTED]"
LOG_FORMAT = "%(asctime)s %(levelname)-7s [%(threadName)s] %(name)s: %(message)s"

# Tokens in URL paths: webhooks (followups, @original edits) and interaction callbacks.
_URL_TOKENS = (
    re.compile(r"(/webhooks/\d+/)[A-Za-z0-9_\-.]+"),
    re.compile(r"(/interactions/\d+/)[A-Za-z0-9_\-.]+"),
)
# Anything shaped like a bot token (base64 user id . timestamp . hmac), even one we were not told.
_BOT_TOKEN_SHAPE = re.compile(r"\b[A-Za-z0-9_\-]{20,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{20,}\b")
_AUTH_HEADER = re.compile(r"(Bot|Bearer)\s+[A-Za-z0-9_\-.]{20,}")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with the given secrets, token-shaped strings and URL tokens replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    for pattern in _URL_TOKENS:
        text = pattern.sub(rf"\g<1>{REDACTED}", text)
    text = _AUTH_HEADER.sub(rf"\g<1> {REDACTED}", text)
    return _BOT_TOKEN_SHAPE.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """Formats each record's message (and traceback) once and redacts it in place."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = {s for s in secrets if s}

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact(message, self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


class _NoVoiceNotice(logging.Filter):
    """Drops discord.py's start-up notes that voice is unsupported (PyNaCl, davey missing):
    this bot never joins a voice channel, so they only alarm operators."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "voice will NOT be supported" not in record.getMessage()


_VOICE_FILTER = _NoVoiceNotice()
_handler: logging.Handler | None = None


def setup_logging(
    level: str | int = "INFO", *, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> logging.Handler:
    """Configure the root logger once; a second call only adds secrets and changes the level.

    The `discord` logger runs at INFO (never DEBUG in production: it logs request URLs).
    """
    global _handler  # noqa: PLW0603 - logging is process-wide by nature
    numeric = logging.getLevelNamesMapping().get(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING or ERROR")
    root = logging.getLogger()
    if _handler is None or _handler not in root.handlers:
        _handler = logging.StreamHandler(stream or sys.stderr)
        _handler.setFormatter(logging.Formatter(LOG_FORMAT))
        _handler.addFilter(RedactingFilter())
        root.addHandler(_handler)
    for flt in _handler.filters:
        if isinstance(flt, RedactingFilter):
            flt.secrets.update(s for s in secrets if s)
    root.setLevel(numeric)
    logging.getLogger("discord").setLevel(max(numeric, logging.INFO))
    voice = logging.getLogger("discord.client")
    if _VOICE_FILTER not in voice.filters:
        voice.addFilter(_VOICE_FILTER)
    return _handler


def teardown_logging() -> None:
    """Remove the handler `setup_logging` installed (tests, and a clean interpreter exit)."""
    global _handler  # noqa: PLW0603
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
        _handler = None
