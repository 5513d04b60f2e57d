"""A realistic demo clinic, written with COPY.

The numbers follow docs/domain.md section 9: therapists log a rupture in roughly 40-55% of
sessions, withdrawal outnumbers confrontation about 3:1, about one client in five
drops out, weekly sessions. Generation is seeded, and each client's history is drawn
from its own seed (its therapist and its place in their caseload), so the same scale
gives the same clinic every time, and therapist001's caseload is the same at every
scale: the benchmark compares the same work on a clinic four times larger. The history
is dated from the moment it is built (`now`, seed_demo's --as-of), so two clinics built
an hour apart differ where a session fell between the two moments: the benchmark builds
both from one.
"""

import random
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Role, SupervisionLink, User
from checks.demo import check_rows, current_forms
from checks.models import AllianceCheck
from ruptures import vocabulary as v
from ruptures.models import RepairAttempt, RuptureEvent
from sessions.models import Client, ClientStatus, Ending, SessionStatus, TherapySession
from supervision.models import SupervisionNote

DEMO_PASSWORD = "rupture-demo-2026"


@dataclass(frozen=True)
class Scale:
    supervisors: int
    therapists: int
    clients: int
    weeks: int  # weekly sessions per client, ending with next week's scheduled one


SCALES = {
    "small": Scale(supervisors=2, therapists=8, clients=150, weeks=12),
    "large": Scale(supervisors=20, therapists=200, clients=5000, weeks=22),
    # Four times the large clinic, the same caseloads: for bench/bench_pages.py.
    "xl": Scale(supervisors=80, therapists=800, clients=20000, weeks=22),
}

SUPERVISOR_NAMES = [("mokafor", "M. Okafor"), ("rlindqvist", "R. Lindqvist")]
THERAPIST_NAMES = [
    ("dlee", "Dana Lee"), ("apatel", "Asha Patel"), ("jmorales", "Jon Morales"),
    ("kchen", "Kai Chen"), ("snowak", "Sara Nowak"), ("tadeyemi", "Tomi Adeyemi"),
    ("lhughes", "Lou Hughes"), ("mrossi", "Marco Rossi"),
]

WITHDRAWAL = [slug for slug, kind in v.MARKER_KIND.items() if kind == "withdrawal"]
CONFRONTATION = [slug for slug, kind in v.MARKER_KIND.items() if kind == "confrontation"]
SOURCES = [slug for slug, _ in v.SOURCES]
SIGNALS = [slug for slug, _ in v.INTERNAL_SIGNALS if slug != "other"]
STRATEGIES = [slug for slug, *_ in v.STRATEGY_TABLE]

PLANS = [
    "Ask at the start of next session how last week's exchange landed.",
    "Name the silence gently and invite them to say what it was like.",
    "Check whether the homework felt imposed; offer to revise it together.",
    "Own my part in rushing the topic; ask what would help.",
    "Revisit the goals we agreed and ask whether they still fit.",
]
# What a supervisor writes when marking a rupture discussed: the next step, in a line.
NOTE_COMMENTS = [
    "Talked it through: name the pull-back gently next time and ask how the session felt.",
    "Your own frustration came up as we discussed it; worth noticing before the next session.",
    "Agreed to check the homework's fit with the client before assigning more.",
    "Good repair. Keep asking how the work feels to them, not only how they are.",
    "Same marker as in earlier sessions: raise the pattern with the client together.",
    "Slow down on the task and return to the goals you agreed at the start.",
]
# A supervisor takes up the more intense ruptures more often, and none before it is two
# days old (the therapist's next supervision comes first), in working hours on a weekday.
NOTE_CHANCE_BASE, NOTE_CHANCE_PER_INTENSITY = 0.1, 0.07
NOTE_EARLIEST_DAYS, NOTE_LATEST_DAYS = 2, 10

HYPOTHESES = [
    "Felt pushed towards a topic before ready.",
    "May fear my judgement if disagreeing openly.",
    "The task does not make sense to them yet.",
    "Familiar pattern of pleasing others at own expense.",
]


def demo_exists() -> bool:
    return User.objects.filter(username__in=["mokafor", "supervisor001"]).exists()


@transaction.atomic
def build_demo_clinic(scale: Scale, *, seed: int = 2026, now=None) -> dict:
    now = now or timezone.now()
    password = make_password(DEMO_PASSWORD)  # hashed once: hashing 200 times takes a minute
    supervisors, therapists = _people(scale, password)
    supervisor_of = _supervision(supervisors, therapists)
    rows = {Client: [], TherapySession: [], RuptureEvent: [], RepairAttempt: [], SupervisionNote: []}
    ids = {model: _Ids(model) for model in [*rows, AllianceCheck]}
    checks = []
    forms = current_forms()
    width = max(len(str(scale.clients)), 4)
    for n in range(scale.clients):
        therapist = therapists[n % len(therapists)]
        # The client's own seed: the therapist, and which of their clients this is.
        rng = random.Random(f"{seed}:{n % len(therapists)}:{n // len(therapists)}")
        sessions, ruptures = len(rows[TherapySession]), len(rows[RuptureEvent])
        _one_client(rng, scale, f"C-{n + 1:0{width}d}", therapist.pk, now, rows, ids,
                    showcase=n < len(therapists))
        checks += check_rows(
            [SimpleNamespace(pk=s["id"], **s) for s in rows[TherapySession][sessions:]],
            [SimpleNamespace(**r) for r in rows[RuptureEvent][ruptures:]], rng, now, forms,
        )
        # Drawn apart, so that adding notes left every other record of the clinic as it was.
        notes_rng = random.Random(f"{seed}:notes:{n % len(therapists)}:{n // len(therapists)}")
        rows[SupervisionNote] += _notes(
            notes_rng, rows[TherapySession][sessions:], rows[RuptureEvent][ruptures:],
            supervisor_of[therapist.pk], now, ids[SupervisionNote],
        )
    for model, made in rows.items():
        _copy(model, made, now)
    for check in checks:
        check.pk = ids[AllianceCheck]()
    _copy_objects(AllianceCheck, checks)
    # COPY leaves the planner's statistics as they were (empty tables): without fresh ones
    # the first sweep's joins are planned as nested loops over the whole clinic.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {
        "users": len(supervisors) + len(therapists) + 1, "clients": len(rows[Client]),
        "sessions": len(rows[TherapySession]), "ruptures": len(rows[RuptureEvent]),
        "attempts": len(rows[RepairAttempt]), "checks": len(checks),
        "supervision notes": len(rows[SupervisionNote]),
    }


def _people(scale, password):
    def names(pool, prefix, n):
        if n <= len(pool):
            return pool[:n]
        return [(f"{prefix}{i:03d}", f"{prefix.title()} {i:03d}") for i in range(1, n + 1)]

    def make(username, display, role):
        return User(username=username, display_name=display, role=role, password=password,
                    email=f"{username}@clinic.example", is_staff=role == Role.ADMIN)

    User.objects.bulk_create([make("admin", "Clinic admin", Role.ADMIN)])
    supervisors = User.objects.bulk_create(
        [make(u, d, Role.SUPERVISOR) for u, d in names(SUPERVISOR_NAMES, "supervisor", scale.supervisors)]
    )
    therapists = User.objects.bulk_create(
        [make(u, d, Role.THERAPIST) for u, d in names(THERAPIST_NAMES, "therapist", scale.therapists)]
    )
    for role in Role.values:
        group = Group.objects.get(name=role)
        group.user_set.add(*User.objects.filter(role=role))
    return supervisors, therapists


def _supervision(supervisors, therapists):
    """Link each therapist to a supervisor; {therapist id: supervisor id}."""
    # Each supervisor takes the next block of therapists in order, so supervisor001
    # oversees therapist001-010 at every scale that gives each supervisor ten: the
    # benchmark's dashboard measures the same caseloads at both clinic sizes.
    per_supervisor = -(-len(therapists) // len(supervisors))
    links = [
        SupervisionLink(supervisor=supervisors[i // per_supervisor], therapist=t,
                        starts_on=timezone.localdate() - timedelta(days=365))
        for i, t in enumerate(therapists)
    ]
    SupervisionLink.objects.bulk_create(links)
    return {link.therapist_id: link.supervisor_id for link in links}


class _Ids:
    """Primary keys handed out in order, taken from the table's sequence in blocks."""

    def __init__(self, model):
        self.model, self.block = model, []

    def __call__(self):
        if not self.block:
            self.block = _ids(self.model, 10000)
        return self.block.pop()


def _ids(model, n):
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, n]
        )
        return [row[0] for row in reversed(cursor.fetchall())]


def _one_client(rng, scale, code, therapist_id, now, rows, ids, *, showcase=False):
    """One client's history. A `showcase` client (each therapist's first) is active, sees
    the therapist again within a day or two and has a rupture still open, so the demo's
    first sweep has something to remind every therapist of."""
    roll = rng.random()
    status = ClientStatus.ACTIVE if roll < 0.8 else ClientStatus.DISCHARGED if roll < 0.93 else ClientStatus.PAUSED
    status = ClientStatus.ACTIVE if showcase else status
    ending, discharged_at = "", None
    if status == ClientStatus.DISCHARGED:
        # About one client in five drops out (domain section 9); most endings are planned.
        ending = rng.choices(Ending.values, weights=[55, 30, 10, 5])[0]
        discharged_at = now - timedelta(days=rng.randint(1, 6))
    client_id = ids[Client]()
    rows[Client].append({
        "id": client_id, "code": code, "therapist_id": therapist_id, "status": status,
        "started_on": (now - timedelta(weeks=scale.weeks + rng.randint(0, 40))).date(),
        "ending": ending, "discharged_at": discharged_at,
    })
    # Each client keeps a weekly slot in clinic hours, in the clinic's time zone.
    days_ago = rng.randint(0, 6)
    day = timezone.localtime(now) - timedelta(days=6 if showcase else days_ago)
    slot = day.replace(hour=rng.randint(9, 17), minute=0, second=0, microsecond=0)
    # Clients who dropped out or paused stop part-way through the period.
    weeks = scale.weeks if status == ClientStatus.ACTIVE else rng.randint(3, scale.weeks - 2)
    sessions = []
    for week in range(weeks, 0, -1):
        starts_at = slot - timedelta(weeks=week - 1)
        roll = rng.random()
        session_status = (
            SessionStatus.HELD if roll < 0.9
            else SessionStatus.CANCELLED if roll < 0.96
            else SessionStatus.NO_SHOW
        )
        # A session still to come is scheduled, never already held, missed or cancelled
        # (a weekly slot later today included).
        if starts_at > now:
            session_status = SessionStatus.SCHEDULED
        sessions.append({"starts_at": starts_at, "status": session_status})
    if status == ClientStatus.ACTIVE:
        sessions.append({"starts_at": slot + timedelta(weeks=1), "status": SessionStatus.SCHEDULED})
    for s in sessions:
        s.update(id=ids[TherapySession](), client_id=client_id, therapist_id=therapist_id)
    rows[TherapySession].extend(sessions)
    held = [s for s in sessions if s["status"] == SessionStatus.HELD]
    # Some clients have a habitual marker: the pattern a supervisor should spot.
    habit = rng.choice(WITHDRAWAL) if rng.random() < 0.3 else None
    first = len(rows[RuptureEvent])
    for index, s in enumerate(held):
        recent = s["starts_at"] > now - timedelta(days=5)
        if recent and rng.random() < 0.5:
            continue  # not yet logged: shows up on the home page
        if rng.random() >= 0.5:
            continue
        rupture = _one_rupture(s, rng, habit, now)
        rupture["id"] = ids[RuptureEvent]()
        rows[RuptureEvent].append(rupture)
        if rupture["repair_status"] == "unaddressed":
            continue
        # Most repairs happen at the next session, some in the session itself.
        later = held[index:]
        session = later[0] if rng.random() < 0.35 or len(later) == 1 else later[1]
        rows[RepairAttempt].append({
            "id": ids[RepairAttempt](), "rupture_id": rupture["id"], "session_id": session["id"],
            "strategy": rng.choice(STRATEGIES), "outcome": rupture["repair_status"],
            "created_by_id": therapist_id,
        })
    if showcase and held and not any(r["repair_status"] in v.OPEN_STATUSES for r in rows[RuptureEvent][first:]):
        rupture = _one_rupture(held[-1], rng, habit, now)
        rupture.update(id=ids[RuptureEvent](), repair_status="unaddressed")
        rows[RuptureEvent].append(rupture)


def _notes(rng, sessions, ruptures, supervisor_id, now, next_id):
    """The supervisor's notes on one client's ruptures: a real clinic's pages read their
    notes (the therapist's home, "not yet discussed" on the dashboards), and a demo
    without any would leave those queries measured on nothing."""
    starts_at = {s["id"]: s["starts_at"] for s in sessions}
    notes = []
    for rupture in ruptures:
        chance = NOTE_CHANCE_BASE + NOTE_CHANCE_PER_INTENSITY * rupture["intensity"]
        if rng.random() >= chance:
            continue
        day = timezone.localtime(starts_at[rupture["session_id"]]) + timedelta(
            days=rng.randint(NOTE_EARLIEST_DAYS, NOTE_LATEST_DAYS))
        if day.weekday() >= 5:
            day += timedelta(days=7 - day.weekday())  # supervision meets on weekdays
        discussed_at = day.replace(hour=rng.randint(9, 16), minute=rng.choice([0, 15, 30, 45]),
                                   second=0, microsecond=0)
        if discussed_at > now:
            continue  # the next supervision is still to come
        notes.append({
            "id": next_id(), "rupture_id": rupture["id"], "supervisor_id": supervisor_id,
            "comment": rng.choice(NOTE_COMMENTS), "created_at": discussed_at,
        })
    return notes


def _one_rupture(session, rng, habit, now):
    kind = "withdrawal" if rng.random() < 0.75 else "confrontation"
    actor = "therapist" if rng.random() < 0.1 else "client"
    pool = WITHDRAWAL if kind == "withdrawal" else CONFRONTATION
    markers = set(rng.sample(pool, rng.choice([1, 1, 2])))
    if habit and kind == "withdrawal" and rng.random() < 0.7:
        markers.add(habit)
    if actor == "therapist" and rng.random() < 0.5:
        markers = set()
    age_days = (now - session["starts_at"]).days
    if age_days < 8:
        status = rng.choice(["unaddressed", "unaddressed", "attempted"])
    else:
        status = rng.choices(
            ["resolved", "partially_resolved", "unresolved", "attempted", "unaddressed"],
            weights=[55, 20, 8, 9, 8],
        )[0]
    return {
        "session_id": session["id"], "kind": kind, "actor": actor,
        "markers": [m for m in v.MARKER_KIND if m in markers],
        "intensity": rng.choices([1, 2, 3, 4, 5], weights=[15, 30, 30, 18, 7])[0],
        "minute": rng.randint(5, 48), "source": rng.choice(SOURCES),
        "internal_signals": sorted(rng.sample(SIGNALS, rng.choice([0, 1, 1, 2])), key=SIGNALS.index),
        "hypothesis": rng.choice(HYPOTHESES), "plan": rng.choice(PLANS), "repair_status": status,
        "created_by_id": session["therapist_id"], "updated_by_id": session["therapist_id"],
    }


def _copy(model, rows, now):
    """COPY `rows` (dicts by column) into the model's table; every other column gets the
    field's default, as a save would give it. Statement triggers (history, the track
    record) fire once for the whole COPY."""
    if not rows:
        return
    fields = model._meta.concrete_fields
    fillers = [_filler(f, now) for f in fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([
                row[f.attname] if f.attname in row else fill()
                for f, fill in zip(fields, fillers, strict=True)
            ])


def _copy_objects(model, objects):
    """COPY unsaved model instances (primary keys set), each column as a save writes it."""
    if not objects:
        return
    fields = model._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for obj in objects:
            copy.write_row([f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields])


def _filler(field, now):
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda: now
    if field.has_default():
        if callable(field.default):
            return field.default
        value = field.get_default()
        return lambda: value
    if field.null:
        return lambda: None
    if field.blank and field.empty_strings_allowed:
        return lambda: ""

    def missing():
        raise ValueError(f"the demo gives no value for {field.model.__name__}.{field.name}")

    return missing
