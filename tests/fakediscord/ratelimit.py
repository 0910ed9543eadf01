"""Discord's per-channel rate limit on message posts, off unless a test turns it on.

Discord lets a bot post 5 messages per 5 s in one channel. Every answer on a limited route
carries the `X-RateLimit-*` headers discord.py reads to pace itself; a post over the limit
gets a 429 with a JSON `retry_after` and a `Via` header (without one discord.py takes the
429 for a Cloudflare ban), after which discord.py sleeps and retries by itself.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

# The routes the limit applies to: posting a message (a reply too) in a channel.
MESSAGE_POST = re.compile(r"^/channels/(\d+)/messages$")


@dataclass(slots=True)
class _Window:
    started: float
    used: int = 0


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether one call may pass, and the headers (and 429 body) that say so."""

    allowed: bool
    headers: dict[str, str]
    retry_after: float

    def body(self) -> dict[str, object]:
        return {
            "message": "You are being rate limited.",
            "retry_after": round(self.retry_after, 3),
            "global": False,
            "code": 0,
        }


@dataclass(slots=True)
class ChannelRateLimit:
    """`limit` message posts per `window` seconds in each channel (a fixed window that opens
    at the first post); `limited` logs each refusal as (fake clock, channel id)."""

    limit: int = 5
    window: float = 5.0
    windows: dict[int, _Window] = field(default_factory=dict)
    limited: list[tuple[float, int]] = field(default_factory=list)

    def channel_of(self, method: str, path: str) -> int | None:
        """The channel whose limit a call spends, or None when the call is not limited."""
        match = MESSAGE_POST.match(path)
        return int(match.group(1)) if method == "POST" and match else None

    def take(self, channel_id: int, now: float) -> RateDecision:
        """Spend one post in `channel_id` at `now`, or refuse it until the window resets."""
        current = self.windows.get(channel_id)
        if current is None or now >= current.started + self.window:
            current = self.windows[channel_id] = _Window(started=now)
        reset_after = max(current.started + self.window - now, 0.0)
        allowed = current.used < self.limit
        if allowed:
            current.used += 1
        else:
            self.limited.append((now, channel_id))
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.limit - current.used, 0)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": "fake-channel-message-post",
        }
        if not allowed:
            headers.update(
                {
                    "Via": "1.1 google",
                    "Retry-After": str(max(1, math.ceil(reset_after))),
                    "X-RateLimit-Scope": "user",
                }
            )
        return RateDecision(allowed=allowed, headers=headers, retry_after=reset_after)
