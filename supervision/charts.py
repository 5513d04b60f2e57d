"""Geometry of the small weekly trend charts, drawn as inline SVG by the templates.

Every chart of a table shares one vertical scale, so that bars can be compared across
rows. Nothing relies on colour: a week without a held session is a dotted outline, a
week with sessions and no rupture a flat line on the baseline, and the numbers behind
each bar are in the table that follows the chart.
"""

import math
from dataclasses import dataclass

from supervision.measures import Week

WIDTH = 96
HEIGHT = 32
GAP = 2


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    week: Week

    @property
    def has_data(self) -> bool:
        return self.week.held > 0


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    scale: float
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def baseline(self) -> int:
        return self.height - 1


def shared_scale(measures) -> float:
    """The top of the scale for a set of charts: the highest weekly rate, at least 1."""
    rates = [w.per_session for m in measures for w in m.weeks if w.per_session is not None]
    top = max(rates, default=0.0)
    # Rounded up to a half so the legend reads "full height = 1.5", not 1.4166.
    return max(1.0, math.ceil(top * 2) / 2)


def trend_chart(weeks: list[Week], scale: float) -> Chart:
    slot = WIDTH / max(len(weeks), 1)
    bar_width = slot - GAP
    usable = HEIGHT - 2
    bars = []
    for i, week in enumerate(weeks):
        rate = week.per_session or 0.0
        height = round(min(rate / scale, 1.0) * usable, 1) if week.held else usable / 3
        y = HEIGHT - 1 - height
        bars.append(Bar(x=round(i * slot + GAP / 2, 1), y=round(y, 1), width=round(bar_width, 1),
                        height=height, week=week))
    return Chart(bars=bars, scale=scale)
