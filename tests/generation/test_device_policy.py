"""`generation.device_policy`: on the CPU the worker runs one image at a time with a timeout
that fits the estimated speed; on a GPU, and for settings an operator set, nothing changes."""

from __future__ import annotations

import pytest

from generation.device_policy import (
    CPU_SECONDS_PER_STEP_512,
    TIMEOUT_MARGIN,
    cpu_seconds_per_image,
    device_defaults,
)

CONFIGURED = {"size": 512, "steps": 25, "max_steps": 50, "max_batch": 4, "job_timeout": 300.0}


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_gpu_keeps_the_configured_values_and_makes_no_estimate(device: str) -> None:
    sizing = device_defaults(device, **CONFIGURED)
    assert (sizing.max_batch, sizing.job_timeout) == (4, 300.0)
    assert sizing.seconds_per_image is None
    assert sizing.changed == ()


def test_cpu_runs_one_image_per_batch_with_a_timeout_that_fits_the_most_steps() -> None:
    sizing = device_defaults("cpu", **CONFIGURED, cores=2)
    assert sizing.max_batch == 1
    worst = cpu_seconds_per_image(512, 50, cores=2)
    assert sizing.job_timeout >= TIMEOUT_MARGIN * worst
    assert sizing.job_timeout % 60 == 0
    assert set(sizing.changed) == {"max_batch", "job_timeout"}


def test_cpu_estimate_is_the_measured_step_time_at_512_on_2_cores() -> None:
    seconds = cpu_seconds_per_image(512, 25, cores=2)
    assert 25 * CPU_SECONDS_PER_STEP_512 <= seconds < 25 * CPU_SECONDS_PER_STEP_512 + 60
    sizing = device_defaults("cpu", **CONFIGURED, cores=2)
    assert sizing.seconds_per_image == seconds
    assert sizing.minutes_per_image == pytest.approx(seconds / 60)


def test_cpu_estimate_scales_with_area_steps_and_cores() -> None:
    base = cpu_seconds_per_image(512, 25, cores=2)
    assert cpu_seconds_per_image(256, 25, cores=2) == pytest.approx(base / 4)
    assert cpu_seconds_per_image(512, 25, cores=8) == pytest.approx(base / 4)
    assert cpu_seconds_per_image(512, 50, cores=2) > 1.9 * base


def test_settings_the_operator_chose_are_kept_on_cpu() -> None:
    sizing = device_defaults(
        "cpu", **CONFIGURED, explicit=frozenset({"max_batch", "job_timeout"}), cores=2
    )
    assert (sizing.max_batch, sizing.job_timeout) == (4, 300.0)
    assert sizing.changed == ()
    assert sizing.seconds_per_image is not None


def test_a_configured_timeout_longer_than_needed_is_never_shortened() -> None:
    sizing = device_defaults("cpu", **{**CONFIGURED, "job_timeout": 86_400.0}, cores=64)
    assert sizing.job_timeout == 86_400.0
    assert "job_timeout" not in sizing.changed
