"""The small weekly trend charts, drawn on the server as inline SVG.

Every chart of a table shares one vertical scale, so that bars can be compared across
rows. Nothing relies on colour: a week without a held session is a dotted outline, a
week with sessions and no rupture a flat line on the baseline, and the numbers behind
each bar are in the table of weekly numbers that follows the charts.

The markup is built here rather than in a template: a page holds a few dozen charts of
twelve bars each, and a template loop over them cost more than all the page's queries.
"""

import math

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from supervision.measures import Week

WIDTH = 96
HEIGHT = 32
GAP = 2


def shared_scale(measures) -> float:
    """The top of the scale for a set of charts: the highest weekly rate, at least 1."""
    rates = [w.per_session for m in measures for w in m.weeks if w.per_session is not None]
    top = max(rates, default=0.0)
    # Rounded up to a half so the legend reads "full height = 1.5", not 1.4166.
    return max(1.0, math.ceil(top * 2) / 2)


def signed(value: float | None) -> str:
    """A change with its sign spelled out (+0.12, −0.05, ±0.00), or a dash when there is none."""
    if value is None:
        return "—"
    if round(value, 2) == 0:
        return "±0.00"
    return f"{'+' if value > 0 else '−'}{abs(value):.2f}"


def week_label(week: Week) -> str:
    return f"{week.starts_on.day} {week.starts_on:%b}"


def week_numbers(week: Week) -> str:
    """What the table of weekly numbers says for one week."""
    if not week.held:
        return "no sessions"
    return f"{week.per_session:.2f} ({week.ruptures}/{week.held})"


def trend_svg(weeks: list[Week], scale: float, label: str, change: float | None) -> SafeString:
    slot = WIDTH / max(len(weeks), 1)
    usable = HEIGHT - 2
    baseline = HEIGHT - 1
    parts = [
        f'<svg class="trend" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(label)}: ruptures per held session, week by week over '
        f"{len(weeks)} weeks; change {signed(change)}. "
        f'The numbers are in the table of weekly numbers.">',
        f'<line class="baseline" x1="0" x2="{WIDTH}" y1="{baseline}" y2="{baseline}"/>',
    ]
    for i, week in enumerate(weeks):
        x, width = round(i * slot + GAP / 2, 1), round(slot - GAP, 1)
        if week.held:
            height = round(min(week.per_session / scale, 1.0) * usable, 1)
            css, title = "bar", (
                f"Week of {week_label(week)}: {week.per_session:.2f} "
                f"({week.ruptures} ruptures in {week.held} sessions)"
            )
        else:
            height = round(usable / 3, 1)
            css, title = "bar no-data", f"Week of {week_label(week)}: no session held"
        y = round(baseline - height, 1)
        parts.append(
            f'<rect class="{css}" x="{x}" y="{y}" width="{width}" height="{height}">'
            f"<title>{title}</title></rect>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - numbers, and a label escaped above
