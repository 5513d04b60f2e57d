"""An alliance report: who may see which therapists, the periods, the groups and the cells.

A report is a pure function of the data, its filters, the viewer and its time (`as_of`):
every format (page, CSV, XLSX, PDF) is drawn from the same `Report`, so the same inputs
give the same figures, and the same bytes, everywhere.
"""

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import OuterRef, Subquery

from accounts.models import Role, SupervisionLink, User, supervisee_ids
from reports.metrics import COUNT, DAYS, KAPPA, METRICS, RATE, Figures, compute
from ruptures.models import Kind
from supervision.measures import Period

CLINIC, SUPERVISOR, THERAPIST = "clinic", "supervisor", "therapist"
GROUPINGS = (CLINIC, SUPERVISOR, THERAPIST)
NO_SUPERVISOR = "no-current-supervisor"


def marker(min_cell: int) -> str:
    """How a hidden small count is written: "<N" for the threshold N in force, never a fixed
    "<5" (with a threshold of 10, a count of 7 is not "<5")."""
    return f"<{min_cell}"


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
        cell = f"counts 1-{self.min_cell - 1} shown as <{self.min_cell}" if self.min_cell > 1 else "no suppression"
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
    periods = []
    for i, period in enumerate([filters.period, *months_of(filters.period)]):
        results = compute(team, period, filters.kind, as_of=as_of)
        pf = PeriodFigures(period=period, whole=i == 0)
        for grouping, key, group in keyed:
            figures = results[grouping].get(key) or Figures()
            pf.cells[group] = {m.slug: cell(m, figures, filters.min_cell) for m in METRICS}
        periods.append(pf)
    scope = "the whole clinic" if is_admin else f"the current supervisees of {viewer.username}"
    return Report(filters=filters, viewer=viewer.username, viewer_role=viewer.role, as_of=as_of,
                  scope_label=scope, groups=[g for _, _, g in keyed], periods=periods)


def small(count, min_cell):
    return count is not None and 0 < count < min_cell


def cell(metric, figures: Figures, min_cell: int) -> Cell:
    """A figure with its n, hiding small counts and any rate built on one."""
    value, n, part = metric.value(figures), metric.n(figures), metric.part(figures)
    n_hidden = small(n, min_cell)
    if metric.kind == COUNT:
        hidden = small(part, min_cell)
    elif metric.kind == RATE:
        # Secondary suppression: a share of a hidden count would give it away.
        hidden = value is not None and (small(part, min_cell) or n_hidden)
    else:  # DAYS, KAPPA: a median or a kappa of fewer than min_cell says too much about each
        hidden = value is not None and n_hidden
    mark = marker(min_cell)
    return Cell(value=value, n=n, value_mark=mark if hidden else "", n_mark=mark if n_hidden else "")


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
