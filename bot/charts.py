"""The `/stats` chart: images per day (bars) and the top users (horizontal bars), as PNG bytes.

Rendering uses matplotlib's object API with the Agg canvas (never pyplot, whose global figure
manager is not thread-safe) and runs in a worker thread through `render_stats_png_async`, so the
event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache

from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font

log = logging.getLogger(__name__)

WIDTH_PX = 1200
HEIGHT_PX = 900
DPI = 100
BAR_COLOR = "#e3350d"  # Poké Ball red
USER_COLOR = "#3b4cca"

# Fonts tried, in order, for text DejaVu Sans cannot draw (Japanese display names and labels).
CJK_FONTS = (
    "Noto Sans CJK JP",
    "Noto Sans JP",
    "IPAexGothic",
    "IPAGothic",
    "TakaoGothic",
    "VL Gothic",
    "Hiragino Sans",
    "Yu Gothic",
    "MS Gothic",
)


@dataclass(frozen=True, slots=True)
class ChartLabels:
    """The chart's text, already localized by the caller."""

    title: str
    per_day: str
    top_users: str
    images: str
    no_data: str


@cache
def font_families() -> tuple[str, ...]:
    """DejaVu Sans first, then every installed CJK font (matplotlib falls back glyph by glyph)."""
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    return ("DejaVu Sans", *(name for name in CJK_FONTS if name in installed))


@cache
def _covered_codepoints() -> frozenset[int]:
    covered: set[int] = set()
    for family in font_families():
        try:
            # matplotlib's stubs leave `PathLike` unparameterised in `findfont`'s signature.
            path = font_manager.findfont(  # pyright: ignore[reportUnknownMemberType]
                font_manager.FontProperties(family=family), fallback_to_default=False
            )
            covered.update(FT2Font(path).get_charmap())
        except (ValueError, RuntimeError, OSError):
            log.debug("font %s could not be read; skipped", family)
    return frozenset(covered)


def can_render(text: str) -> bool:
    """Whether the installed fonts have a glyph for every character of `text`."""
    covered = _covered_codepoints()
    return all(ord(ch) in covered or ch.isspace() for ch in text)


def has_cjk_font() -> bool:
    """Whether Japanese labels can be drawn; without such a font the caller uses English."""
    return can_render("日本語の画像数")


def chart_locale(locale: object) -> object:
    """The locale to label the chart in: the user's, unless it needs glyphs we cannot draw."""
    value = str(getattr(locale, "value", locale) or "")
    if value.lower().startswith("ja") and not has_cjk_font():
        return "en"
    return locale


def user_label(name: str | None, user_id: int) -> str:
    """A display name when we have one that the fonts can draw, else the user id."""
    if name and can_render(name):
        return name
    return str(user_id)


def render_stats_png(
    per_day: Sequence[tuple[date, int]],
    top_users: Sequence[tuple[str, int]],
    labels: ChartLabels,
) -> bytes:
    """Draw the two panels and return PNG bytes (WIDTH_PX x HEIGHT_PX). Blocking: call in a thread."""
    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    font = font_manager.FontProperties(family=list(font_families()))
    title_font = font.copy()
    title_font.set_size("x-large")
    title_font.set_weight("bold")
    # matplotlib's stubs type `suptitle`'s and `savefig`'s **kwargs as Unknown.
    fig.suptitle(labels.title, fontproperties=title_font)  # pyright: ignore[reportUnknownMemberType]
    days_ax, users_ax = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1, 1], "hspace": 0.45})

    # 1. Images per day.
    days_ax.set_title(labels.per_day, fontproperties=font)
    if per_day:
        dates = [day for day, _ in per_day]
        counts = [count for _, count in per_day]
        bars = days_ax.bar(dates, counts, color=BAR_COLOR, width=0.8)
        if len(per_day) <= 31:  # beyond a month the numbers would overlap
            days_ax.bar_label(bars, labels=[str(c) if c else "" for c in counts], padding=2)
        locator = AutoDateLocator(minticks=3, maxticks=10)
        days_ax.xaxis.set_major_locator(locator)
        days_ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        days_ax.set_ylim(0, max([*counts, 1]) * 1.15)
    days_ax.set_ylabel(labels.images, fontproperties=font)
    days_ax.yaxis.get_major_locator().set_params(integer=True)
    if not any(count for _, count in per_day):
        _no_data(days_ax, labels.no_data, font)

    # 2. Top users, the busiest on top.
    users_ax.set_title(labels.top_users, fontproperties=font)
    if top_users:
        names = [name for name, _ in reversed(top_users)]
        counts = [count for _, count in reversed(top_users)]
        bars = users_ax.barh(range(len(names)), counts, color=USER_COLOR)
        users_ax.set_yticks(range(len(names)), names, fontproperties=font)
        users_ax.bar_label(bars, padding=3)
        users_ax.set_xlim(0, max(counts) * 1.15 or 1)
        users_ax.xaxis.get_major_locator().set_params(integer=True)
    else:
        users_ax.set_xticks([])
        users_ax.set_yticks([])
        _no_data(users_ax, labels.no_data, font)
    users_ax.set_xlabel(labels.images, fontproperties=font)
    for ax in (days_ax, users_ax):
        ax.spines[["top", "right"]].set_visible(False)

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)  # pyright: ignore[reportUnknownMemberType]
    return buffer.getvalue()


def _no_data(ax: object, text: str, font: font_manager.FontProperties) -> None:
    big = font.copy()
    big.set_size("large")
    ax.text(  # type: ignore[attr-defined]
        0.5,
        0.5,
        text,
        transform=ax.transAxes,  # type: ignore[attr-defined]
        ha="center",
        va="center",
        color="#666666",
        fontproperties=big,
    )


async def render_stats_png_async(
    per_day: Sequence[tuple[date, int]],
    top_users: Sequence[tuple[str, int]],
    labels: ChartLabels,
) -> bytes:
    """`render_stats_png` in a worker thread, so the event loop keeps serving Discord."""
    return await asyncio.to_thread(render_stats_png, list(per_day), list(top_users), labels)
