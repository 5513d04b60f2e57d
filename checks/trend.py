"""A client's checks over time, drawn on the server as inline SVG like the dashboard's trends.

Bars are the client's `together` (1-5); above them, one row of marks for each side's
`tension`: filled for yes, hollow for no, a dash for rather-not-say, nothing when not
answered. Nothing relies on colour, and the numbers follow in a table.
"""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from checks.models import AllianceCheck, Respondent

SESSIONS_SHOWN = 20
SLOT = 14
HEIGHT = 64
BAR_TOP = 20  # the bars live below the two rows of tension marks


@dataclass(frozen=True)
class Point:
    session_id: int
    starts_at: datetime
    therapist_tension: str | None
    client_tension: str | None
    client_together: int | None
    client_declined: bool
    client_reported: bool

    @property
    def client_tension_label(self):
        return {"rather_not_say": "rather not say"}.get(self.client_tension, self.client_tension)


def points_for(client) -> list[Point]:
    """The client's last sessions with a check, oldest first: one query."""
    rows = (
        AllianceCheck.objects.filter(session__client=client, session__deleted_at__isnull=True)
        .order_by("-session__starts_at", "session_id")
        .values_list("session_id", "session__starts_at", "respondent", "tension", "together", "declined",
                     "client_reported_rupture")
        # At most a check per respondent and session: the rows of one session more than
        # are shown tell the loop below where to stop, whatever the length of the therapy.
        [: (SESSIONS_SHOWN + 1) * len(Respondent.values)]
    )
    by_session = {}
    for session_id, starts_at, respondent, tension, together, declined, reported in rows:
        entry = by_session.setdefault(session_id, {"starts_at": starts_at})
        entry[respondent] = (tension, together, declined, reported)
        if len(by_session) > SESSIONS_SHOWN:
            del by_session[session_id]
            break
    points = []
    for session_id, entry in by_session.items():
        therapist = entry.get(Respondent.THERAPIST, (None, None, False, False))
        client = entry.get(Respondent.CLIENT, (None, None, False, False))
        points.append(Point(session_id, entry["starts_at"], therapist[0], client[0], client[1], client[2], client[3]))
    return sorted(points, key=lambda p: p.starts_at)


def _mark(x, y, answer, who):
    if answer == "yes":
        return f'<circle class="mark yes" cx="{x}" cy="{y}" r="3"><title>{who}: tension yes</title></circle>'
    if answer == "no":
        return f'<circle class="mark no" cx="{x}" cy="{y}" r="2.5"><title>{who}: tension no</title></circle>'
    if answer == "rather_not_say":
        return (f'<line class="mark rns" x1="{x - 3}" x2="{x + 3}" y1="{y}" y2="{y}">'
                f"<title>{who}: rather not say</title></line>")
    return ""


def trend_svg(points: list[Point]) -> SafeString:
    width = max(len(points), 1) * SLOT
    baseline = HEIGHT - 1
    usable = baseline - BAR_TOP
    parts = [
        f'<svg class="trend alliance-trend" viewBox="0 0 {width} {HEIGHT}" width="{width}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(_summary(points))} The numbers are in the table that follows.">',
        f'<line class="baseline" x1="0" x2="{width}" y1="{baseline}" y2="{baseline}"/>',
    ]
    for i, p in enumerate(points):
        x, centre = i * SLOT + 2, i * SLOT + SLOT / 2
        day = f"{timezone.localtime(p.starts_at):%-d %b}"
        parts.append(_mark(centre, 5, p.therapist_tension, f"{day}, therapist"))
        parts.append(_mark(centre, 13, p.client_tension, f"{day}, client"))
        if p.client_together:
            height = round(p.client_together / 5 * usable, 1)
            parts.append(f'<rect class="bar" x="{x}" y="{round(baseline - height, 1)}" width="{SLOT - 4}" '
                         f'height="{height}"><title>{day}: client together {p.client_together} of 5</title></rect>')
        else:
            height = round(usable / 5, 1)
            parts.append(f'<rect class="bar no-data" x="{x}" y="{round(baseline - height, 1)}" width="{SLOT - 4}" '
                         f'height="{height}"><title>{day}: no answer from the client</title></rect>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - numbers and fixed words, the summary escaped above


def _summary(points):
    together = [p.client_together for p in points if p.client_together]
    agreed = sum(1 for p in points if p.therapist_tension in ("yes", "no") and p.therapist_tension == p.client_tension)
    both = sum(1 for p in points if p.therapist_tension in ("yes", "no") and p.client_tension in ("yes", "no"))
    text = f"Alliance checks of the last {len(points)} sessions: the client's rating of working together"
    if together:
        text += f" from {together[0]} to {together[-1]} of 5"
    return text + f"; both sides gave the same tension answer in {agreed} of {both} sessions."
