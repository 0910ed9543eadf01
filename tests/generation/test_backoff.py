"""The one back-off of the Redis loops: doubling from `first`, capped, jittered, reset."""

from __future__ import annotations

import logging
import time

import pytest

from generation.backoff import Backoff, keep_trying


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_delays_double_up_to_the_cap_and_a_success_starts_over() -> None:
    top = Backoff(first=0.1, cap=1.0, rand=lambda: 1.0, clock=Clock())
    assert [round(top.next_delay(), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    top.reset()
    assert top.next_delay() == pytest.approx(0.1)


def test_jitter_keeps_each_delay_between_half_and_all_of_its_step() -> None:
    low = Backoff(first=0.1, cap=1.0, rand=lambda: 0.0, clock=Clock())
    assert [round(low.next_delay(), 3) for _ in range(6)] == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5]
    real = Backoff(first=0.1, cap=1.0)
    delays = [real.next_delay() for _ in range(200)]
    assert all(0.05 <= d <= 1.0 for d in delays)
    assert len({round(d, 6) for d in delays[10:]}) > 1, "capped delays must still differ"


def test_a_failure_after_a_quiet_spell_starts_over() -> None:
    clock = Clock()
    backoff = Backoff(first=0.1, cap=1.0, rand=lambda: 1.0, clock=clock)
    for _ in range(5):
        backoff.next_delay()
        clock.now += 0.5
    assert backoff.next_delay() == pytest.approx(1.0)  # failures close together: still capped
    clock.now += 2.5  # longer than twice the cap without a failure
    assert backoff.next_delay() == pytest.approx(0.1)


def test_a_cap_below_the_first_delay_caps_it_and_bad_bounds_are_refused() -> None:
    assert Backoff(first=0.1, cap=0.01, rand=lambda: 1.0).next_delay() == pytest.approx(0.01)
    with pytest.raises(ValueError, match="must be positive"):
        Backoff(first=0.0)
    with pytest.raises(ValueError, match="must be positive"):
        Backoff(cap=-1.0)


async def test_wait_sleeps_the_delay_it_returns() -> None:
    backoff = Backoff(first=0.05, cap=0.05, rand=lambda: 1.0)
    started = time.monotonic()
    slept = await backoff.wait()
    assert slept == pytest.approx(0.05)
    assert time.monotonic() - started >= 0.05


async def test_keep_trying_reports_outages_retries_what_it_handles_and_logs_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import redis.exceptions

    script: list[Exception | None] = [
        redis.exceptions.ConnectionError("refused"),
        OSError("no route"),
        RuntimeError("NOGROUP lost"),
        ValueError("a bug"),
        None,
    ]
    calls: list[str] = []
    unreachable: list[str] = []

    async def step() -> None:
        calls.append("try")
        error = script.pop(0)
        if error is not None:
            raise error

    def handled(exc: Exception) -> bool:
        return "NOGROUP" in str(exc)

    with caplog.at_level(logging.ERROR, logger="generation.backoff"):
        await keep_trying(
            step,
            running=lambda: bool(script),
            unreachable=lambda exc: unreachable.append(str(exc)),
            handled=handled,
            cap=0.01,
        )
    assert len(calls) == 5
    assert unreachable == ["refused", "no route"]
    [logged] = caplog.records
    assert logged.getMessage() == "step failed; retrying"
    assert isinstance(logged.exc_info and logged.exc_info[1], ValueError)
