"""The worker's sizing as `run` builds it: on the CPU one image per batch, a per-image timeout
that fits, and a start-up line with the expected minutes per image; explicit settings win."""

from __future__ import annotations

import logging

import pytest

from bot.app import log_device_sizing
from bot.settings import Settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.mark.usefixtures("clean_env")
def test_cpu_defaults_change_and_the_start_up_line_says_what_to_expect(caplog) -> None:
    settings = Settings()
    caplog.set_level(logging.WARNING, logger="bot.app")
    sizing = log_device_sizing(settings, "cpu")
    assert sizing.max_batch == 1
    assert sizing.job_timeout > settings.pokemon_job_timeout
    [record] = caplog.records
    message = record.getMessage()
    assert message.startswith("running on cpu: expect about ")
    assert "min per 512² image at 25 steps; batch 1" in message
    assert "changed for the CPU" in message


@pytest.mark.usefixtures("clean_env")
def test_settings_the_operator_set_are_kept(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setenv("POKEMON_MAX_BATCH", "3")
    monkeypatch.setenv("POKEMON_JOB_TIMEOUT", "90s")
    caplog.set_level(logging.WARNING, logger="bot.app")
    sizing = log_device_sizing(Settings(), "cpu")
    assert (sizing.max_batch, sizing.job_timeout) == (3, 90.0)
    assert "changed for the CPU" not in caplog.text
    assert "running on cpu: expect about" in caplog.text


@pytest.mark.usefixtures("clean_env")
def test_gpu_keeps_the_settings_and_logs_no_estimate(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="bot.app")
    sizing = log_device_sizing(Settings(), "cuda")
    assert (sizing.max_batch, sizing.job_timeout) == (4, 300.0)
    assert not caplog.records


def test_gpu_batch_comes_from_free_memory_and_is_logged(
    clean_env: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.app")
    sizing = log_device_sizing(Settings(), "cuda", 75 * 1024**3)
    assert sizing.max_batch == 16
    assert "batches of up to 16 pictures" in caplog.text
