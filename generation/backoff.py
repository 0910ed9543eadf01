"""How long to wait before trying Redis again, and the loop that keeps trying: the one back-off
(`Backoff`) and the one retry loop (`keep_trying`) of the bot's and the workers' Redis sides.

Exponential with a cap and jitter: the n-th failure in a row waits a random time between half
and all of `min(cap, first × 2^(n-1))` ("equal jitter"), so a loop never spins and never waits
long once Redis is back, and many workers that lost Redis together do not all knock at the same
instant when it returns. A success (`reset`) starts over from `first`; so does a failure after
a quiet spell longer than twice the cap, for loops that have no single moment of success.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


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
        if first <= 0 or cap <= 0:
            raise ValueError(f"first and cap must be positive, got first={first} cap={cap}")
        self.first = min(first, cap)  # a cap below the first delay caps that one too
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


async def keep_trying(
    attempt: Callable[[], Awaitable[None]],
    *,
    running: Callable[[], bool],
    unreachable: Callable[[BaseException], None],
    handled: Callable[[Exception], bool] = lambda _exc: False,
    cap: float = 15.0,
) -> None:
    """Call `attempt` again and again while `running()`: the one retry loop of the Redis sides.

    A success resets the back-off. Redis unreachable (`streams.redis_errors()`) goes to
    `unreachable` (which says so in the log, see `streams.Reachability`); an error `handled`
    says it took care of is tried again at once; anything else is logged with its traceback.
    Both of those wait the back-off (capped at `cap` seconds) before the next try."""
    from generation.streams import redis_errors

    backoff = Backoff(cap=cap)
    while running():
        try:
            await attempt()
            backoff.reset()
            continue
        except asyncio.CancelledError:
            raise
        except redis_errors() as exc:
            unreachable(exc)
        except Exception as exc:
            if handled(exc):
                continue
            log.exception("%s failed; retrying", getattr(attempt, "__name__", "a Redis loop"))
        await backoff.wait()
