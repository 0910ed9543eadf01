"""The `/stats` chart: real matplotlib rendering to PNG bytes, decoded back with Pillow."""

from __future__ import annotations

import io
import threading
from datetime import date, timedelta

import pytest
from PIL import Image

from bot import charts
from bot.charts import (
    BAR_COLOR,
    HEIGHT_PX,
    USER_COLOR,
    WIDTH_PX,
    ChartLabels,
    chart_locale,
    render_stats_png,
    render_stats_png_async,
    user_label,
)

LABELS = ChartLabels(
    title="Images in the last 7 days",
    per_day="Images per day (UTC)",
    top_users="Top users",
    images="images",
    no_data="No images in this period",
)
TODAY = date(2024, 5, 7)


def window(days: int, counts: dict[date, int]) -> list[tuple[date, int]]:
    """What `store.usage.images_per_day` returns: every day of the window, zeros included."""
    first = TODAY - timedelta(days=days - 1)
    return [
        (first + timedelta(days=i), counts.get(first + timedelta(days=i), 0)) for i in range(days)
    ]


def decode(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG\r\n\x1a\n"), "not a PNG signature"
    image = Image.open(io.BytesIO(png))
    image.load()  # decodes every pixel: a truncated or corrupt file raises here
    return image.convert("RGB")


def has_color(image: Image.Image, hex_color: str) -> bool:
    rgb = tuple(int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return any(color == rgb for _, color in image.getcolors(maxcolors=WIDTH_PX * HEIGHT_PX))


def test_chart_with_data_is_a_png_of_the_chart_size_with_both_bar_series() -> None:
    per_day = window(7, {date(2024, 5, 3): 4, date(2024, 5, 5): 9})
    image = decode(render_stats_png(per_day, [("Ash", 9), ("123456789012345678", 4)], LABELS))
    assert image.size == (WIDTH_PX, HEIGHT_PX)
    assert has_color(image, BAR_COLOR), "no per-day bars drawn"
    assert has_color(image, USER_COLOR), "no top-user bars drawn"


def test_chart_without_data_is_still_a_png_of_the_chart_size_without_bars() -> None:
    image = decode(render_stats_png(window(30, {}), [], LABELS))
    assert image.size == (WIDTH_PX, HEIGHT_PX)
    assert not has_color(image, BAR_COLOR)
    assert not has_color(image, USER_COLOR)
    # The "no data" notice is drawn in gray text, so there are gray pixels besides black axes.
    assert has_color(image, "#666666")


def test_chart_for_ninety_days_renders() -> None:
    per_day = window(90, {date(2024, 3, 1): 2})
    assert decode(render_stats_png(per_day, [("Ash", 2)], LABELS)).size == (WIDTH_PX, HEIGHT_PX)


async def test_async_rendering_runs_off_the_event_loop_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    real = charts.render_stats_png

    def recording(*args: object) -> bytes:
        seen.append(threading.get_ident())
        return real(*args)  # type: ignore[arg-type]

    # A spy that calls through: it only records which thread did the real rendering.
    monkeypatch.setattr(charts, "render_stats_png", recording)
    png = await render_stats_png_async(window(7, {}), [], LABELS)
    assert decode(png).size == (WIDTH_PX, HEIGHT_PX)
    assert seen
    assert seen[0] != loop_thread


def test_user_label_falls_back_to_the_id_without_a_drawable_name() -> None:
    assert user_label("Ash", 5) == "Ash"
    assert user_label(None, 5) == "5"
    assert user_label("", 5) == "5"
    # A private-use character has no glyph in any font we might ship.
    assert user_label("\ue000", 5) == "5"


def test_chart_language_is_english_unless_japanese_can_be_drawn() -> None:
    assert chart_locale("en-US") == "en-US"
    expected = "ja" if charts.has_cjk_font() else "en"
    assert chart_locale("ja") == expected
