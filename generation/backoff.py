"""How long to wait before trying Redis again: the one back-off of the generators' loops.

Exponential with a cap and jitter: the n-th failure in a row waits a random time between half
and all of `min(cap, first × 2^(n-1))` ("equal jitter"), so a loop never spins and never waits
long once Redis is back, and many workers that lost Redis together do not all knock at the same
instant when it returns. A success (`reset`) starts over from `first`; so does a failure after
a quiet spell longer than twice the cap, for loops that have no single moment of success.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable


class Backoff:
    """The delays of one retrying loop. Not thread-safe: one loop owns one."""

    def __init__(
        self,
        *,
        first: float = 0.1,
        cap: float = 15.0,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if first <= 0 or cap < first:
            raise ValueError(f"need 0 < first <= cap, got first={first} cap={cap}")
        self.first = first
        self.cap = cap
        self._rand = rand
        self._clock = clock
        self._failures = 0
        self._last_failure = float("-inf")

    def reset(self) -> None:
        """The loop succeeded: the next failure waits about `first` again."""
        self._failures = 0

    def next_delay(self) -> float:
        """Count a failure and return how long to wait before the next try."""
        now = self._clock()
        if now - self._last_failure > 2 * self.cap:
            self._failures = 0  # a quiet spell: this failure is the first of a new run
        self._last_failure = now
        self._failures += 1
        ceiling = min(self.cap, self.first * 2 ** min(self._failures - 1, 64))
        return ceiling / 2 + self._rand() * ceiling / 2

    async def wait(self) -> float:
        """Count a failure, sleep its delay (on the loop) and return the delay slept."""
        delay = self.next_delay()
        await asyncio.sleep(delay)
        return delay
