"""The alliance report's figures: one definition each, read from the dashboard's query.

Every session and rupture count comes from `supervision.measures.measure`, the query the
supervision dashboard draws, so a figure on the dashboard and the same figure in a report
can never disagree. The follow-through figures (flags) and the endings are counted here,
through the querysets' default managers, so that a soft-deleted rupture, session or client
is left out as everywhere else.

A client's sessions count for the therapist the client is with when the report is made, as
on the dashboard: a transferred client's history moves with them, so a supervisor's report
covers exactly the clients whose records they may read.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Exists, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce

from ruptures import vocabulary as v
from ruptures.models import RepairAttempt, RuptureEvent
from sessions.models import Client, ClientStatus, SessionStatus, TherapySession
from supervision.measures import OPEN_TOO_LONG_DAYS, STATUS_SLUGS, Measures, Period, measure

COUNT, RATE, DAYS, KAPPA = "count", "rate", "days", "kappa"


@dataclass
class Figures:
    """What one group made in one period: the dashboard's measures and the flags."""

    m: Measures = field(default_factory=Measures)
    flags_raised: int = 0
    flags_due: int = 0  # raised flags whose session has begun by the report's time
    flags_handled: int = 0
    escalations: int = 0
    discharged: int = 0  # clients discharged in the period
    endings: dict = field(default_factory=dict)  # ending slug -> clients discharged so
    dropouts_after_open: int = 0


ACTIVITY, RUPTURES, REPAIR, FOLLOW = "Activity", "Ruptures", "Repair", "Follow-through"
VOICE, ENDINGS = "The client's voice", "Endings"
# How a therapy ended (Client.ending), each as the figure `ended_<ending>`.
ENDING_LABELS = {"planned": "Planned endings", "dropout": "Dropouts", "transfer": "Transfers",
                 "other": "Other endings"}
DROPOUT_WINDOW_DAYS = 30


def _m(name):
    return lambda f: getattr(f.m, name)


def _ending(slug):
    return lambda f: f.endings.get(slug, 0)


# The counts the figures are made of, each by name: a figure shows one (a count, or a share's
# numerator) over another (its n). Small-number suppression hides counts, never a single
# figure, so a count hidden where it is a figure is hidden where it is an n too.
COUNTS: dict[str, Callable[[Figures], int]] = {
    **{name: _m(name) for name in (
        "held_sessions", "logged_sessions", "ruptures", "withdrawal", "confrontation", "therapist_side",
        *STATUS_SLUGS, "repaired_same_session", "repair_dated", "open_over_14_days",
        "therapist_checks", "client_checks", "client_reported", "unlogged")},
    "discussed": lambda f: f.m.ruptures - f.m.undiscussed,
    "tension_pairs": lambda f: f.m.agreement.n,
    "tension_agreed": lambda f: f.m.agreement.agreed,
    "flags_raised": lambda f: f.flags_raised,
    "flags_due": lambda f: f.flags_due,
    "flags_handled": lambda f: f.flags_handled,
    "escalations": lambda f: f.escalations,
    "discharged": lambda f: f.discharged,
    **{f"ended_{slug}": _ending(slug) for slug in ENDING_LABELS},
    "dropouts_after_open": lambda f: f.dropouts_after_open,
}


# Counts that make up another within one group and period, shown beside them as their n:
# each rupture is of one kind and has one repair status, and each client discharged has at
# most one ending (none if discharged before the form asked), so subtraction works here too.
PARTS_OF = (
    ("ruptures", tuple(slug for slug, _ in v.KINDS)),
    ("ruptures", STATUS_SLUGS),
    ("discharged", tuple(f"ended_{slug}" for slug in ENDING_LABELS)),
)


@dataclass(frozen=True)
class Metric:
    slug: str
    label: str
    kind: str
    # The count a figure shows (a count, or a share's numerator; none for a median or a
    # kappa) and the count it is over, its n: names in COUNTS.
    part: str | None
    n: str
    definition: str
    section: str
    # A median's or a kappa's own value (it is no count).
    figure: Callable[[Figures], float | None] | None = None

    def value(self, figures):
        if self.figure is not None:
            return self.figure(figures)
        part = COUNTS[self.part](figures)
        if self.kind == RATE:
            n = self.count_n(figures)
            return part / n if n else None
        return part

    def count_n(self, figures) -> int:
        return COUNTS[self.n](figures)


METRICS = [
    Metric("held_sessions", "Sessions held", COUNT, "held_sessions", "held_sessions",
           "Sessions marked held that started in the period.", ACTIVITY),
    Metric("logging_completeness", "Logging completeness", RATE, "logged_sessions", "held_sessions",
           "Of the sessions held, the share with any of: a rupture logged, “no rupture” noted, or the "
           "therapist's alliance check answered.", ACTIVITY),
    Metric("ruptures", "Ruptures", COUNT, "ruptures", "held_sessions",
           "Ruptures logged for sessions held in the period (n: those sessions). More ruptures "
           "logged often means more noticed, not a worse alliance.", RUPTURES),
    Metric("ruptures_per_held_session", "Ruptures per held session", RATE, "ruptures", "held_sessions",
           "Ruptures divided by sessions held.", RUPTURES),
    Metric("withdrawal", "Withdrawal", COUNT, "withdrawal", "ruptures",
           "Ruptures logged as withdrawal (n: all ruptures).", RUPTURES),
    Metric("confrontation", "Confrontation", COUNT, "confrontation", "ruptures",
           "Ruptures logged as confrontation (n: all ruptures).", RUPTURES),
    Metric("therapist_side", "Therapist-side", COUNT, "therapist_side", "ruptures",
           "Ruptures where the therapist moved away or against (n: all ruptures).", RUPTURES),
    Metric("resolved", "Resolved", COUNT, "resolved", "ruptures",
           "Ruptures of the period whose status is resolved at the report's time.", REPAIR),
    Metric("partially_resolved", "Partially resolved", COUNT, "partially_resolved", "ruptures",
           "Ruptures of the period whose status is partially resolved (never merged with resolved).",
           REPAIR),
    Metric("unresolved", "Unresolved", COUNT, "unresolved", "ruptures",
           "Ruptures of the period whose status is unresolved.", REPAIR),
    Metric("attempted", "Attempted", COUNT, "attempted", "ruptures",
           "Ruptures of the period with a repair attempted and no outcome settled.", REPAIR),
    Metric("unaddressed", "Unaddressed", COUNT, "unaddressed", "ruptures",
           "Ruptures of the period with nothing done about them yet.", REPAIR),
    Metric("repaired_same_session", "Repaired in the same session", COUNT, "repaired_same_session",
           "ruptures", "Resolved or partially resolved ruptures with a successful attempt in the "
           "rupture's own session.", REPAIR),
    Metric("median_days_to_repair", "Median days to repair", DAYS, None, "repair_dated",
           "For repaired ruptures with a dated attempt, the days from the rupture's session to the "
           "session of the first resolving attempt; the middle value (n: those ruptures).", REPAIR,
           figure=_m("median_days")),
    Metric("open_over_14_days", f"Open over {OPEN_TOO_LONG_DAYS} days", COUNT, "open_over_14_days",
           "ruptures", f"Ruptures of the period still open at the report's time whose session was more "
           f"than {OPEN_TOO_LONG_DAYS} days before it.", REPAIR),
    Metric("flags_raised", "Flags raised", COUNT, "flags_raised", "flags_raised",
           "Reminders raised in the period: an open rupture flagged before the client's next session.",
           FOLLOW),
    Metric("flags_handled_before_session", "Flags handled before the session", RATE,
           "flags_handled", "flags_due",
           "Of the flags raised in the period whose session has begun, the share with a repair attempt "
           "recorded or the repair status changed between the flag and the session's start.", FOLLOW),
    Metric("escalations", "Escalations", COUNT, "escalations", "flags_raised",
           "Flags raised in the period that went to the supervisor too (intensity 4-5, or carried over).",
           FOLLOW),
    Metric("discussed_in_supervision", "Discussed in supervision", COUNT, "discussed", "ruptures",
           "Ruptures of the period a supervisor has marked “discussed in supervision”.", FOLLOW),
    Metric("therapist_check_completion", "Therapist check completion", RATE, "therapist_checks",
           "held_sessions", "Of the sessions held, the share with the therapist's alliance check answered.",
           VOICE),
    Metric("client_check_completion", "Client check completion", RATE, "client_checks", "held_sessions",
           "Of the sessions held, the share with the client's alliance check answered (a client who "
           "declined did not answer).", VOICE),
    Metric("client_reported_ruptures", "Client-reported ruptures", COUNT, "client_reported", "client_checks",
           "Client checks reporting a rupture: tension yes, or intensity 3 or more, or worked through 2 "
           "or less (n: client checks answered). Clients report fewer than therapists.", VOICE),
    Metric("tension_agreement", "Agreement on tension", RATE, "tension_agreed", "tension_pairs",
           "Of the sessions where both answered tension yes or no (rather not say left out), the share "
           "where they gave the same answer.", VOICE),
    Metric("tension_kappa", "Cohen's kappa on tension", KAPPA, None, "tension_pairs",
           "Agreement on tension beyond chance (1 = full, 0 = chance); empty when chance agreement is "
           "total. n: the same sessions as the agreement.", VOICE, figure=lambda f: f.m.agreement.kappa),
    Metric("unlogged_client_reported", "Unlogged client-reported ruptures", COUNT, "unlogged",
           "client_checks", "Client-reported ruptures in sessions where the therapist logged no rupture "
           "and answered tension no (or nothing): the most useful to discuss.", VOICE),
    *(Metric(f"ended_{slug}", label, COUNT, f"ended_{slug}", "discharged",
             f"Clients discharged in the period whose therapy ended as “{slug}” on the discharge form "
             f"(n: clients discharged in the period).", ENDINGS) for slug, label in ENDING_LABELS.items()),
    Metric("dropout_after_open_rupture", "Dropouts after an open rupture", COUNT, "dropouts_after_open",
           "ended_dropout",
           f"Dropouts discharged in the period with a rupture still open at the report's time from a "
           f"session held in the {DROPOUT_WINDOW_DAYS} days (of 24 hours) up to the discharge (n: dropouts).",
           ENDINGS),
]
BY_SLUG = {m.slug: m for m in METRICS}


def compute(team, period: Period, kind: str, *, as_of: datetime):
    """{grouping: {key: Figures}} for the total (), ("group_id",) and ("therapist_id",)."""
    sets = ((), ("group_id",), ("therapist_id",))
    measured = measure(team, period, kind, sets, as_of=as_of)
    figures = {s: {key: Figures(m=m) for key, m in by_key.items()} for s, by_key in measured.items()}
    _add_flags(figures, team, period, kind, as_of)
    _add_endings(figures, team, period, kind)
    return figures


def _add_flags(figures, team, period, kind, as_of):
    from reminders.models import Flag

    group_of = dict(team)
    ruptures = RuptureEvent.objects.filter(session__client__therapist_id__in=list(group_of))
    if kind:
        ruptures = ruptures.filter(kind=kind)
    flags = (
        Flag.objects.filter(
            rupture__in=ruptures, session__in=TherapySession.objects.all(),
            raised_at__gte=period.start_at, raised_at__lt=period.end_at,
        )
        .annotate(handled=Exists(_attempt_between()) | Exists(_status_change_between()))
        .values_list("rupture__session__client__therapist_id")
        .annotate(
            raised=Count("pk"),
            due=Count("pk", filter=Q(session__starts_at__lte=as_of)),
            handled_n=Count("pk", filter=Q(session__starts_at__lte=as_of, handled=True)),
            escalated_n=Count("pk", filter=Q(escalated=True)),
        )
        .order_by()
    )
    for therapist_id, raised, due, handled, escalated in flags:
        ids = {"therapist_id": therapist_id, "group_id": group_of[therapist_id]}
        for grouping, by_key in figures.items():
            key = tuple(ids[c] for c in grouping)
            target = by_key.setdefault(key, Figures())
            target.flags_raised += raised
            target.flags_due += due
            target.flags_handled += handled
            target.escalations += escalated


def _add_endings(figures, team, period, kind):
    """Clients discharged in the period by how their therapy ended, and the dropouts with a
    rupture still open from a session in the DROPOUT_WINDOW_DAYS before: one query."""
    group_of = dict(team)
    discharged_at = OuterRef(OuterRef("discharged_at"))
    window = TherapySession.objects.filter(
        client=OuterRef(OuterRef("pk")), status=SessionStatus.HELD,
        starts_at__lte=discharged_at, starts_at__gte=discharged_at - timedelta(days=DROPOUT_WINDOW_DAYS),
    )
    open_rupture = RuptureEvent.objects.open().filter(session__in=window)
    if kind:
        open_rupture = open_rupture.filter(kind=kind)
    rows = (
        Client.objects.filter(
            therapist_id__in=list(group_of), status=ClientStatus.DISCHARGED,
            discharged_at__gte=period.start_at, discharged_at__lt=period.end_at,
        )
        .annotate(after_open=Exists(open_rupture))
        .values_list("therapist_id")
        .annotate(
            discharged_n=Count("pk"),
            after_open_n=Count("pk", filter=Q(ending="dropout", after_open=True)),
            **{f"ended_{slug}": Count("pk", filter=Q(ending=slug)) for slug in ENDING_LABELS},
        )
        .order_by()
    )
    for therapist_id, discharged, after_open, *by_ending in rows:
        ids = {"therapist_id": therapist_id, "group_id": group_of[therapist_id]}
        for grouping, by_key in figures.items():
            target = by_key.setdefault(tuple(ids[c] for c in grouping), Figures())
            target.discharged += discharged
            target.dropouts_after_open += after_open
            for slug, n in zip(ENDING_LABELS, by_ending, strict=True):
                target.endings[slug] = target.endings.get(slug, 0) + n


def _attempt_between():
    return RepairAttempt.objects.filter(
        rupture=OuterRef("rupture"), created_at__gte=OuterRef("raised_at"),
        created_at__lt=OuterRef("session__starts_at"),
    )


def _status_change_between():
    """A snapshot of the rupture, recorded between the flag and the session, whose status
    differs from the one it had when the flag was raised."""
    Event = RuptureEvent.pgh_event_models["update"]
    at_raise = Event.objects.filter(
        pgh_obj_id=OuterRef(OuterRef("rupture_id")), pgh_created_at__lte=OuterRef(OuterRef("raised_at")),
    ).order_by("-pgh_id").values("repair_status")[:1]
    # Rows made in bulk have no snapshot from before; a new rupture starts unaddressed.
    before = Coalesce(Subquery(at_raise), Value("unaddressed"))
    return Event.objects.filter(
        pgh_obj_id=OuterRef("rupture_id"), pgh_created_at__gt=OuterRef("raised_at"),
        pgh_created_at__lt=OuterRef("session__starts_at"),
    ).exclude(repair_status=before)
