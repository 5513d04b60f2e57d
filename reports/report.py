"""An alliance report: who may see which therapists, the periods, the groups and the cells.

A report is a pure function of the data, its filters, the viewer and its time (`as_of`):
every format (page, CSV, XLSX, PDF) is drawn from the same `Report`, so the same inputs
give the same figures, and the same bytes, everywhere.
"""

import hashlib
import hmac
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import OuterRef, Subquery

from accounts.models import Role, SupervisionLink, User, supervisee_ids
from reports.metrics import COUNT, COUNTS, DAYS, KAPPA, METRICS, PARTS_OF, RATE, Figures, compute
from ruptures.models import Kind
from supervision.measures import Period

CLINIC, SUPERVISOR, THERAPIST = "clinic", "supervisor", "therapist"
GROUPINGS = (CLINIC, SUPERVISOR, THERAPIST)
NO_SUPERVISOR = "no-current-supervisor"


def marker(min_cell: int) -> str:
    """How a hidden small count is written: "<N" for the threshold N in force, never a fixed
    "<5" (with a threshold of 10, a count of 7 is not "<5")."""
    return f"<{min_cell}"


# A count hidden only so that a small one cannot be worked out by subtraction: it may be of
# any size, so it is not written "<N" (see `suppress`).
COMPLEMENT = "x"


@dataclass(frozen=True)
class Filters:
    period: Period
    by: str = CLINIC
    kind: str = ""
    pseudonymise: bool = False
    min_cell: int = 5

    def as_dict(self):
        """For the access log and the documents' covers: options, never records."""
        return {
            "from": self.period.start.isoformat(), "to": self.period.end.isoformat(), "by": self.by,
            "kind": self.kind or "any", "pseudonymise_therapists": self.pseudonymise,
            "min_cell": self.min_cell,
        }

    @classmethod
    def from_dict(cls, d):
        return cls(
            period=Period(date.fromisoformat(d["from"]), date.fromisoformat(d["to"])), by=d["by"],
            kind="" if d["kind"] == "any" else d["kind"], pseudonymise=d["pseudonymise_therapists"],
            min_cell=d["min_cell"],
        )

    def describe(self):
        kind = dict(Kind.choices).get(self.kind, "any kind")
        names = "therapists pseudonymised" if self.pseudonymise else "therapists by username"
        cell = (f"counts 1-{self.min_cell - 1} shown as {marker(self.min_cell)}, and counts that would give one "
                f"away by subtraction as x" if self.min_cell > 1 else "no suppression")
        return f"by {self.by}; ruptures of {kind.lower()}; {names}; {cell}"


@dataclass(frozen=True)
class Cell:
    value: int | float | None
    n: int
    # What a hidden value or n is written as in every format ("" when shown).
    value_mark: str = ""
    n_mark: str = ""

    @property
    def value_hidden(self):
        return bool(self.value_mark)

    @property
    def n_hidden(self):
        return bool(self.n_mark)


@dataclass(frozen=True)
class Group:
    type: str
    name: str
    label: str


@dataclass
class PeriodFigures:
    period: Period
    whole: bool
    cells: dict[Group, dict[str, Cell]] = field(default_factory=dict)


@dataclass
class Report:
    filters: Filters
    viewer: str
    viewer_role: str
    as_of: datetime
    scope_label: str
    groups: list[Group]
    periods: list[PeriodFigures]

    @property
    def whole(self):
        return self.periods[0]

    @property
    def months(self):
        return self.periods[1:]

    def rows(self):
        """(period, group, metric, cell) in the CSV's order: the whole period first, then
        each month; within each, the groups in order; within each, the metrics in order."""
        for pf in self.periods:
            for group in self.groups:
                for metric in METRICS:
                    yield pf.period, group, metric, pf.cells[group][metric.slug]


def months_of(period: Period) -> list[Period]:
    """The calendar months the period touches, each cut to the period."""
    months, first = [], period.start
    while first <= period.end:
        following = (first.replace(day=1) + timedelta(days=32)).replace(day=1)
        months.append(Period(first, min(period.end, following - timedelta(days=1))))
        first = following
    return months


def pseudonym(username: str) -> str:
    """The same therapist gets the same pseudonym in every report (keyed by the secret key)."""
    key = hashlib.sha256(b"rupture-log report pseudonyms|" + settings.SECRET_KEY.encode()).digest()
    return "therapist-" + hmac.new(key, username.encode(), hashlib.sha256).hexdigest()[:8]


def team_for(viewer):
    """(therapists, {supervisor id: user}) the viewer may report on, or None for nobody.

    Admins: every therapist, each with their current supervisor. Supervisors: their current
    supervisees, grouped under themselves. Anyone else: None.
    """
    if viewer.role == Role.ADMIN:
        current = (
            SupervisionLink.objects.active().filter(therapist=OuterRef("pk"))
            .order_by("-starts_on", "-pk").values("supervisor_id")[:1]
        )
        people = list(User.objects.filter(role=Role.THERAPIST).annotate(supervisor_id=Subquery(current))
                      .order_by("username"))
        supervisors = {u.pk: u for u in User.objects.filter(pk__in={p.supervisor_id for p in people})}
        return people, supervisors
    if viewer.role == Role.SUPERVISOR:
        people = list(User.objects.filter(pk__in=supervisee_ids(viewer)).order_by("username"))
        for person in people:
            person.supervisor_id = viewer.pk
        return people, {viewer.pk: viewer}
    return None


def build(viewer, filters: Filters, *, as_of: datetime) -> Report:
    found = team_for(viewer)
    if found is None:
        raise PermissionError("only admins and supervisors make alliance reports")
    people, supervisors = found
    team = [(p.pk, p.supervisor_id) for p in people]
    is_admin = viewer.role == Role.ADMIN
    total = Group(CLINIC, "clinic", "Whole clinic") if is_admin else Group(
        SUPERVISOR, viewer.username, "Your supervisees")
    keyed = [((), (), total)]
    if filters.by == SUPERVISOR and is_admin:
        ids = sorted({p.supervisor_id for p in people}, key=lambda i: (i is None, supervisors[i].username if i else ""))
        for sid in ids:
            name = supervisors[sid].username if sid else NO_SUPERVISOR
            label = str(supervisors[sid]) if sid else "No current supervisor"
            keyed.append((("group_id",), (sid,), Group(SUPERVISOR, name, label)))
    elif filters.by == THERAPIST:
        therapist_groups = []
        for p in people:
            name = pseudonym(p.username) if filters.pseudonymise else p.username
            label = name if filters.pseudonymise else str(p)
            therapist_groups.append((("therapist_id",), (p.pk,), Group(THERAPIST, name, label)))
        # By name (or pseudonym), never by any figure: the report ranks no one.
        keyed += sorted(therapist_groups, key=lambda g: g[2].name)
    groups = [g for _, _, g in keyed]
    spans = [filters.period, *months_of(filters.period)]
    tables = []
    for period in spans:
        results = compute(team, period, filters.kind, as_of=as_of)
        tables.append({group: results[grouping].get(key) or Figures() for grouping, key, group in keyed})
    marks = suppress(tables, groups, filters.min_cell)
    periods = []
    for i, (period, table) in enumerate(zip(spans, tables, strict=True)):
        pf = PeriodFigures(period=period, whole=i == 0)
        for group, figures in table.items():
            def mark(name, at=(i, group)):
                return marks.get((*at, name), "")
            pf.cells[group] = {m.slug: cell(m, figures, mark) for m in METRICS}
        periods.append(pf)
    scope = "the whole clinic" if is_admin else f"the current supervisees of {viewer.username}"
    return Report(filters=filters, viewer=viewer.username, viewer_role=viewer.role, as_of=as_of,
                  scope_label=scope, groups=groups, periods=periods)


def small(count, min_cell):
    return count is not None and 0 < count < min_cell


def sums(groups: list[Group], periods: int):
    """Each total a report shows beside the counts that add up to it, as (total, parts), each
    a (period index, group, count name): a reader can subtract along every one of them.

    The first group (the clinic, or a supervisor's supervisees) is the sum of the other
    groups in each period, and each group's whole period is the sum of its months; within
    each group and period, the kinds and the repair statuses make up the ruptures and the
    endings the clients discharged (`PARTS_OF`).
    """
    total, rows = groups[0], groups[1:]
    for name in COUNTS:
        if rows:
            for i in range(periods):
                yield (i, total, name), [(i, g, name) for g in rows]
        for g in groups:
            yield (0, g, name), [(i, g, name) for i in range(1, periods)]
    for i in range(periods):
        for g in groups:
            for whole, parts in PARTS_OF:
                yield (i, g, whole), [(i, g, name) for name in parts]


def suppress(tables: list[dict[Group, Figures]], groups: list[Group], min_cell: int) -> dict[tuple, str]:
    """Which counts the report hides, and how each is written: {(period index, group, count
    name): mark}. The one place where suppression is decided; every format draws its cells.

    Primary: a count from 1 to min_cell - 1 is hidden and written "<min_cell".
    Secondary (complementary), as statistical disclosure control does it: along each sum the
    report shows (`sums`), a hidden count is given back by subtraction when it is the only
    hidden one, and so is the hidden counts' total when it is itself below min_cell. Then
    the smallest shown count among the parts (a nonzero one first: a zero adds nothing to the
    hidden total) is hidden too, written "x" for it may be of any size, until neither holds;
    the total itself stays. Hiding a count can open another sum it is in, so those are
    checked again, until nothing changes. A figure built on a hidden count is hidden with it
    (`cell`).
    """
    values = {(i, g, name): count(table[g]) for i, table in enumerate(tables) for g in groups
              for name, count in COUNTS.items()}
    marks = {key: marker(min_cell) for key, value in values.items() if small(value, min_cell)}
    if not marks:
        return marks
    equations = list(sums(groups, len(tables)))
    involved = {}
    for e, (total, parts) in enumerate(equations):
        for key in (total, *parts):
            involved.setdefault(key, []).append(e)
    queue = deque(range(len(equations)))
    waiting = set(queue)
    while queue:
        e = queue.popleft()
        waiting.discard(e)
        total, parts = equations[e]
        while _given_back(total, parts, marks, values, min_cell):
            shown = [p for p in parts if p not in marks]
            # Ties go to the first in the report's order: the same data hide the same cells.
            # With no part left to hide (a sum of one part, equal to its total), the total.
            key = min(shown, key=lambda p: (values[p] == 0, values[p]), default=total)
            if key in marks:
                break  # cannot happen: with every part hidden, the sum gives nothing back
            marks[key] = COMPLEMENT
            for other in involved[key]:
                if other not in waiting:
                    waiting.add(other)
                    queue.append(other)
    return marks


def _given_back(total, parts, marks, values, min_cell):
    """Whether subtraction along this sum gives back a hidden count, or a small hidden total."""
    hidden = [p for p in parts if p in marks]
    if len(hidden) + (total in marks) == 1:
        return True
    return total not in marks and bool(hidden) and sum(values[p] for p in hidden) < min_cell


def cell(metric, figures: Figures, mark: Callable[[str], str]) -> Cell:
    """A figure with its n, each hidden where its count is (`mark`: the count's mark, or "").

    A share is hidden with its count or its n: either, with the other, would give it back.
    """
    value, n = metric.value(figures), metric.count_n(figures)
    n_mark = mark(metric.n)
    if metric.kind == COUNT:
        value_mark = mark(metric.part)
    elif metric.kind == RATE:
        # Hidden even when empty: an empty share over a hidden n would say the n is 0.
        found = {mark(metric.part), n_mark} - {""}
        # "<N" rather than "x" when either count is small: the truer thing to say.
        value_mark = min(found, key=lambda m: m == COMPLEMENT, default="")
    else:
        # DAYS, KAPPA: a median or a kappa of fewer than min_cell says too much about each,
        # and whether there is one at all would say whether its hidden n is 0.
        value_mark = n_mark
    return Cell(value=value, n=n, value_mark=value_mark, n_mark=n_mark)


def value_text(metric, c: Cell) -> str:
    """The cell's value as the CSV (and the page) spells it."""
    if c.value_hidden:
        return c.value_mark
    if c.value is None:
        return ""
    if metric.kind == COUNT:
        return str(int(c.value))
    if metric.kind == RATE:
        return f"{c.value:.4f}"
    if metric.kind == KAPPA:
        return f"{c.value:.4f}"
    assert metric.kind == DAYS
    return f"{c.value:.1f}"


def n_text(c: Cell) -> str:
    return c.n_mark or str(c.n)


def default_period(today: date) -> Period:
    """Last calendar month: what a monthly report is about."""
    last = today.replace(day=1) - timedelta(days=1)
    return Period(last.replace(day=1), last)


__all__ = ["RATE", "Report", "build"]
