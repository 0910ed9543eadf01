"""Logging set up once: thread names in the format, `discord` at INFO, and no token ever written."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator

import pytest

from bot.logging_setup import REDACTED, redact, setup_logging, teardown_logging

BOT_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"
INTERACTION_TOKEN = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OmFiY2RlZmdoaWprbG1ub3A"
WEBHOOK_URL = f"https://discord.com/api/v10/webhooks/111222333444555666/{INTERACTION_TOKEN}/messages/@original"
CALLBACK_URL = (
    f"https://discord.com/api/v10/interactions/999888777666555444/{INTERACTION_TOKEN}/callback"
)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    teardown_logging()
    stream = io.StringIO()
    root = logging.getLogger()
    old_level = root.level
    old_discord = logging.getLogger("discord").level
    setup_logging("DEBUG", secrets=[BOT_TOKEN], stream=stream)
    yield stream
    teardown_logging()
    root.setLevel(old_level)
    logging.getLogger("discord").setLevel(old_discord)


def test_bot_token_in_message_and_args_is_redacted(captured: io.StringIO) -> None:
    log = logging.getLogger("bot.test")
    log.info("logging in with %s", BOT_TOKEN)
    log.info(f"token inline {BOT_TOKEN}")
    log.info("headers %s", {"Authorization": f"Bot {BOT_TOKEN}"})
    text = captured.getvalue()
    assert BOT_TOKEN not in text
    assert text.count(REDACTED) >= 3


def test_interaction_token_in_webhook_and_callback_urls_is_redacted(captured: io.StringIO) -> None:
    # What discord.http logs for followups, @original edits and callbacks.
    discord_http = logging.getLogger("discord.http")
    discord_http.warning("PATCH %s with 200 has returned %s", WEBHOOK_URL, {"ok": True})
    discord_http.warning("POST %s has received %s", CALLBACK_URL, "{}")
    text = captured.getvalue()
    assert INTERACTION_TOKEN not in text
    assert f"/webhooks/111222333444555666/{REDACTED}/messages/@original" in text
    assert f"/interactions/999888777666555444/{REDACTED}/callback" in text


def test_tokens_inside_tracebacks_are_redacted(captured: io.StringIO) -> None:
    log = logging.getLogger("bot.test")
    try:
        raise RuntimeError(f"request to {WEBHOOK_URL} failed with token {BOT_TOKEN}")
    except RuntimeError:
        log.exception("delivery failed")
    text = captured.getvalue()
    assert "Traceback" in text
    assert "RuntimeError" in text
    assert INTERACTION_TOKEN not in text
    assert BOT_TOKEN not in text


def test_token_shaped_strings_are_redacted_even_when_not_registered() -> None:
    other = "OTk5OTk5OTk5OTk5OTk5OTk5.AbCdEf.zyxwvutsrqponmlkjihgfedcba98765"
    assert other not in redact(f"leaked {other} here")


def test_plain_text_and_japanese_are_left_alone() -> None:
    line = "job=12 user=34 prompt=ピカチュウ steps=25 outcome=done"
    assert redact(line, [BOT_TOKEN]) == line


def test_thread_name_is_in_every_line(captured: io.StringIO) -> None:
    def work() -> None:
        logging.getLogger("generation.worker").info("from the worker")

    thread = threading.Thread(target=work, name="generation-worker")
    thread.start()
    thread.join()
    assert "[generation-worker] generation.worker: from the worker" in captured.getvalue()


def test_discord_logger_runs_at_info_even_when_bot_logs_debug(captured: io.StringIO) -> None:
    assert logging.getLogger().level == logging.DEBUG
    assert logging.getLogger("discord").level == logging.INFO
    logging.getLogger("discord.http").debug("GET %s", WEBHOOK_URL)
    assert "GET" not in captured.getvalue()


def test_setup_twice_keeps_one_handler(captured: io.StringIO) -> None:
    setup_logging("INFO", secrets=["another-secret-value"])
    ours = [h for h in logging.getLogger().handlers if getattr(h, "stream", None) is captured]
    assert len(ours) == 1
    logging.getLogger("bot").warning("value another-secret-value and %s", BOT_TOKEN)
    text = captured.getvalue()
    assert "another-secret-value" not in text
    assert BOT_TOKEN not in text


def test_unknown_level_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        setup_logging("LOUD")
