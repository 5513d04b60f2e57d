"""A realistic demo clinic, generated with bulk inserts.

The numbers follow domain.md section 9: therapists log a rupture in roughly 40-55% of
sessions, withdrawal outnumbers confrontation about 3:1, about one client in five
drops out, weekly sessions. Generation is seeded, so the same scale gives the same
clinic every time.
"""

import random
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from accounts.models import Role, SupervisionLink, User
from checks.demo import demo_checks
from ruptures import vocabulary as v
from ruptures.models import RepairAttempt, RuptureEvent
from sessions.models import Client, ClientStatus, Ending, SessionStatus, TherapySession

DEMO_PASSWORD = "rupture-demo-2026"
BATCH = 5000


@dataclass(frozen=True)
class Scale:
    supervisors: int
    therapists: int
    clients: int
    weeks: int  # weekly sessions per client, ending with next week's scheduled one


SCALES = {
    "small": Scale(supervisors=2, therapists=8, clients=150, weeks=12),
    "large": Scale(supervisors=20, therapists=200, clients=5000, weeks=22),
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
    rng = random.Random(seed)
    now = now or timezone.now()
    password = make_password(DEMO_PASSWORD)  # hashed once: hashing 200 times takes a minute
    supervisors, therapists = _people(scale, password)
    _supervision(supervisors, therapists)
    clients = _clients(scale, therapists, rng, now)
    sessions = _sessions(scale, clients, rng, now)
    ruptures = _ruptures(sessions, rng, now)
    attempts = _attempts(ruptures, sessions, rng)
    checks = demo_checks(sessions, ruptures, rng, now)
    return {
        "users": len(supervisors) + len(therapists) + 1, "clients": len(clients),
        "sessions": len(sessions), "ruptures": len(ruptures), "attempts": attempts, "checks": checks,
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
    links = [
        SupervisionLink(supervisor=supervisors[i % len(supervisors)], therapist=t,
                        starts_on=timezone.localdate() - timedelta(days=365))
        for i, t in enumerate(therapists)
    ]
    SupervisionLink.objects.bulk_create(links)


def _clients(scale, therapists, rng, now):
    width = len(str(scale.clients))
    clients = []
    for n in range(scale.clients):
        roll = rng.random()
        status = ClientStatus.ACTIVE if roll < 0.8 else ClientStatus.DISCHARGED if roll < 0.93 else ClientStatus.PAUSED
        ending, discharged_at = "", None
        if status == ClientStatus.DISCHARGED:
            # About one client in five drops out (domain section 9); most endings are planned.
            ending = rng.choices(Ending.values, weights=[55, 30, 10, 5])[0]
            discharged_at = now - timedelta(days=rng.randint(1, 6))
        clients.append(Client(
            code=f"C-{n + 1:0{max(width, 4)}d}", therapist=therapists[n % len(therapists)],
            status=status, started_on=(now - timedelta(weeks=scale.weeks + rng.randint(0, 40))).date(),
            ending=ending, discharged_at=discharged_at,
        ))
    return Client.objects.bulk_create(clients, batch_size=BATCH)


def _sessions(scale, clients, rng, now):
    sessions = []
    for client in clients:
        # Each client keeps a weekly slot in clinic hours, in the clinic's time zone.
        day = timezone.localtime(now) - timedelta(days=rng.randint(0, 6))
        slot = day.replace(hour=rng.randint(9, 17), minute=0, second=0, microsecond=0)
        # Clients who dropped out or paused stop part-way through the period.
        weeks = scale.weeks if client.status == ClientStatus.ACTIVE else rng.randint(3, scale.weeks - 2)
        for week in range(weeks, 0, -1):
            starts_at = slot - timedelta(weeks=week - 1)
            roll = rng.random()
            status = (
                SessionStatus.HELD if roll < 0.9
                else SessionStatus.CANCELLED if roll < 0.96
                else SessionStatus.NO_SHOW
            )
            sessions.append(TherapySession(client=client, therapist_id=client.therapist_id,
                                           starts_at=starts_at, status=status))
        if client.status == ClientStatus.ACTIVE:
            sessions.append(TherapySession(client=client, therapist_id=client.therapist_id,
                                           starts_at=slot + timedelta(weeks=1), status=SessionStatus.SCHEDULED))
    for s in sessions:
        # The most recent held sessions are left for the therapist to log in the demo.
        if s.status == SessionStatus.HELD and s.starts_at > now:
            s.status = SessionStatus.SCHEDULED
    return TherapySession.objects.bulk_create(sessions, batch_size=BATCH)


def _ruptures(sessions, rng, now):
    ruptures = []
    habits = {}
    for s in sessions:
        if s.status != SessionStatus.HELD:
            continue
        recent = s.starts_at > now - timedelta(days=5)
        if recent and rng.random() < 0.5:
            continue  # not yet logged: shows up on the home page
        if rng.random() >= 0.5:
            continue
        # Some clients have a habitual marker: the pattern a supervisor should spot.
        habit = habits.setdefault(s.client_id, rng.choice(WITHDRAWAL) if rng.random() < 0.3 else None)
        ruptures.append(_one_rupture(s, rng, habit, now))
    return RuptureEvent.objects.bulk_create(ruptures, batch_size=BATCH)


def _one_rupture(session, rng, habit, now):
    kind = "withdrawal" if rng.random() < 0.75 else "confrontation"
    actor = "therapist" if rng.random() < 0.1 else "client"
    pool = WITHDRAWAL if kind == "withdrawal" else CONFRONTATION
    markers = set(rng.sample(pool, rng.choice([1, 1, 2])))
    if habit and kind == "withdrawal" and rng.random() < 0.7:
        markers.add(habit)
    if actor == "therapist" and rng.random() < 0.5:
        markers = set()
    age_days = (now - session.starts_at).days
    if age_days < 8:
        status = rng.choice(["unaddressed", "unaddressed", "attempted"])
    else:
        status = rng.choices(
            ["resolved", "partially_resolved", "unresolved", "attempted", "unaddressed"],
            weights=[55, 20, 8, 9, 8],
        )[0]
    return RuptureEvent(
        session=session, kind=kind, actor=actor,
        markers=[m for m in v.MARKER_KIND if m in markers],
        intensity=rng.choices([1, 2, 3, 4, 5], weights=[15, 30, 30, 18, 7])[0],
        minute=rng.randint(5, 48), source=rng.choice(SOURCES),
        internal_signals=sorted(rng.sample(SIGNALS, rng.choice([0, 1, 1, 2])), key=SIGNALS.index),
        hypothesis=rng.choice(HYPOTHESES), plan=rng.choice(PLANS), repair_status=status,
        created_by_id=session.therapist_id, updated_by_id=session.therapist_id,
    )


def _attempts(ruptures, sessions, rng):
    later = {}
    for s in sessions:
        if s.status == SessionStatus.HELD:
            later.setdefault(s.client_id, []).append(s)
    attempts = []
    for r in ruptures:
        if r.repair_status == "unaddressed":
            continue
        held = [s for s in later[r.session.client_id] if s.starts_at >= r.session.starts_at]
        # Most repairs happen at the next session, some in the session itself.
        session = held[0] if rng.random() < 0.35 or len(held) == 1 else held[1]
        attempts.append(RepairAttempt(
            rupture=r, session=session, strategy=rng.choice(STRATEGIES), outcome=r.repair_status,
            created_by_id=r.created_by_id,
        ))
    RepairAttempt.objects.bulk_create(attempts, batch_size=BATCH)
    return len(attempts)
