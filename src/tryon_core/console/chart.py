"""A bar chart as plain numbers for an inline SVG (drawn server-side: no script needed).

Bars share the width; the tallest fills the plot's height; a day with any spend stays at
least a pixel tall, so that it shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import msgspec

from tryon_core.reports import DailySpend

__all__ = ["Bar", "BarChart", "bar_chart"]

WIDTH = 600
HEIGHT = 160
_GAP = 0.2  # of each slot, between bars


class Bar(msgspec.Struct, frozen=True, kw_only=True):
    day: date
    credits: int
    x: float
    y: float
    width: float
    height: float
    label: bool
    """Whether the day is written under the axis: every seventh, and the last (never two
    close together)."""


class BarChart(msgspec.Struct, frozen=True, kw_only=True):
    bars: list[Bar]
    width: int
    height: int
    peak: int
    total: int


def bar_chart(days: Sequence[DailySpend], *, width: int = WIDTH, height: int = HEIGHT) -> BarChart:
    peak = max((d.credits for d in days), default=0)
    slot = width / max(len(days), 1)
    bars = []
    for i, day in enumerate(days):
        tall = 0.0 if peak == 0 else max(day.credits / peak * height, 1.0 if day.credits else 0.0)
        bars.append(
            Bar(
                day=day.day,
                credits=day.credits,
                x=round(i * slot + slot * _GAP / 2, 2),
                y=round(height - tall, 2),
                width=round(slot * (1 - _GAP), 2),
                height=round(tall, 2),
                label=(i % 7 == 0 and len(days) - 1 - i >= 4) or i == len(days) - 1,
            )
        )
    return BarChart(
        bars=bars, width=width, height=height, peak=peak, total=sum(d.credits for d in days)
    )
