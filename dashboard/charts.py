"""A bar chart as plain numbers for an inline SVG: no chart library, nothing to download."""

import math
from dataclasses import dataclass

from provisioning.costs import DailyCost

from .templatetags.dashboard_extras import money


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # tooltip and accessible text


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    top: float  # the value at the top of the drawing area
    first_label: str
    last_label: str
    summary: str  # the same numbers in words, for screen readers

    @property
    def middle(self) -> float:
        return self.height / 2


def _nice_top(value: float) -> float:
    """The next "round" number at or above value (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return next(f * magnitude for f in (1, 2, 5, 10) if f * magnitude >= value * (1 - 1e-9))


def daily_cost_chart(days: list[DailyCost], *, width: int = 600, height: int = 120,
                     gap: float = 2.0) -> BarChart:
    top = _nice_top(max((d.cost for d in days), default=0.0))
    slot = width / max(len(days), 1)
    bars = []
    for index, day in enumerate(days):
        bar_height = height * day.cost / top
        bars.append(Bar(
            x=round(index * slot + gap / 2, 2),
            y=round(height - bar_height, 2),
            width=round(max(slot - gap, 1.0), 2),
            height=round(bar_height, 2),
            label=f"{day.day:%a %d %b}: {money(day.cost)}",
        ))
    total = sum(d.cost for d in days)
    highest = max((d.cost for d in days), default=0.0)
    summary = (f"Fleet cost per day over the last {len(days)} days: {money(total)} in all, "
               f"{money(highest)} on the dearest day.")
    return BarChart(
        width=width, height=height, bars=bars, top=top,
        first_label=f"{days[0].day:%d %b}" if days else "",
        last_label="today" if days else "",
        summary=summary,
    )
