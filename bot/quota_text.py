"""How a limit and a quota are put in words, shared by `/usage` and `/ratelimit` so both
commands describe a limit in exactly the same words (no cog imports another cog)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from bot.i18n import t

if TYPE_CHECKING:
    from datetime import datetime

    from storage.types import Quota


def limit_text(images: int | None, period: str, locale: object) -> str:
    """`3 per hour` / `1時間あたり3枚`; `unlimited` for None; `blocked` for 0."""
    if images is None:
        return t("ratelimit.value.unlimited", locale)
    if images == 0:
        return t("ratelimit.value.blocked", locale)
    return t(
        "ratelimit.value", locale, images=images, period=t(f"ratelimit.period.{period}", locale)
    )


def source_text(source: str, locale: object) -> str:
    """Where a limit comes from: personal, server default, bot-wide default, owner."""
    return t(f"ratelimit.source.{source}", locale)


def timestamp(moment: datetime) -> str:
    """A Discord relative timestamp (`<t:UNIX:R>`), rendered by each client in its language."""
    return discord.utils.format_dt(moment, "R")


def quota_lines(quota: Quota, locale: object) -> list[str]:
    """The lines that describe a quota now: used, remaining, next free slot, and the limit's source."""
    if quota.limit == 0:
        return [
            t("usage.blocked", locale),
            t(
                "usage.limit",
                locale,
                value=limit_text(0, quota.period, locale),
                source=source_text(quota.source, locale),
            ),
        ]
    if quota.limit is None:
        lines = [t(f"usage.used_unlimited.{quota.period}", locale, used=quota.used)]
    else:
        lines = [
            t(f"usage.used.{quota.period}", locale, used=quota.used, limit=quota.limit),
            t("usage.remaining", locale, remaining=quota.remaining),
        ]
        if quota.reset_at is not None and quota.used > 0:
            lines.append(t("usage.reset", locale, when=timestamp(quota.reset_at)))
        else:
            lines.append(t("usage.reset_full", locale))
    lines.append(
        t(
            "usage.limit",
            locale,
            value=limit_text(quota.limit, quota.period, locale),
            source=source_text(quota.source, locale),
        )
    )
    lines.append(t("usage.upscales", locale))  # ⬆️ draws nothing new, but counts
    return lines
