"""The Django side of the engine: facts and history from the database, in few queries.

The engine (`strategies.engine`) is pure Python; this module feeds it a rupture as
logged (or as the form stands so far), the client's recent history and the clinic's
own record of what worked, and hands back what the templates show.
"""

from dataclasses import dataclass, replace

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, Sum, Value
from django.db.models.functions import Coalesce

from ruptures import vocabulary as v
from ruptures.models import RepairAttempt, RepairStatus, RuptureEvent
from sessions.models import SessionStatus, TherapySession
from strategies.engine import (
    Advice,
    Attempt,
    PastRupture,
    RuptureFacts,
    Suggestion,
    advise,
    format_track_record,
)
from strategies.models import TrackRecord
from strategies.rules import RECURRENCE_WINDOW


@dataclass(frozen=True)
class ShownSuggestion:
    suggestion: Suggestion
    for_client: str
    for_clinic: str
    # 1 for the engine's top suggestion: the page groups them by `when`, not by rank.
    rank: int = 0

    def __getattr__(self, name):
        return getattr(self.suggestion, name)


@dataclass(frozen=True)
class ShownAdvice:
    """What the rupture page and the live form show: the engine's advice, worded for people."""

    advice: Advice
    suggestions: list[ShownSuggestion]
    # In the order the page groups them (domain 6a), each (when, label, suggestions).
    groups: list[tuple[str, str, list[ShownSuggestion]]]
    protocol_name: str
    protocol_url: str
    session_number: int

    def __getattr__(self, name):
        return getattr(self.advice, name)


def facts_of(rupture, attempts=()) -> RuptureFacts:
    """The rupture as logged, with its own attempts so far (oldest first)."""
    return RuptureFacts(
        kind=rupture.kind, actor=rupture.actor, markers=tuple(rupture.markers),
        intensity=rupture.intensity, source=rupture.source,
        internal_signals=tuple(rupture.internal_signals),
        risk=rupture.risk, declined_relational_talk=rupture.declined_relational_talk,
        attempts=tuple(Attempt(a.strategy, a.outcome, a.stage_reached or None) for a in attempts),
    )


def facts_from(data) -> RuptureFacts | None:
    """The form as filled so far, leniently: unknown values are dropped, not errors.

    Suggestions are a help while typing, so a half-filled form still gets them; the
    form's own validation decides what may be saved.
    """
    kind = data.get("kind")
    if kind not in v.slugs(v.KINDS):
        return None
    actor = data.get("actor") if data.get("actor") in v.slugs(v.ACTORS) else "client"
    source = data.get("source") if data.get("source") in v.slugs(v.SOURCES) else "unknown"
    try:
        intensity = min(max(int(data.get("intensity", 3)), 1), 5)
    except (TypeError, ValueError):
        intensity = 3
    markers = tuple(m for m in dict.fromkeys(data.getlist("markers")) if m in v.MARKER_KIND)
    signals = tuple(s for s in dict.fromkeys(data.getlist("internal_signals")) if s in v.slugs(v.INTERNAL_SIGNALS))
    risk = data.get("risk") if data.get("risk") in v.slugs(v.RISKS) else v.NO_RISK
    declined = data.get("declined_relational_talk") in ("on", "true", "1", "True")
    return RuptureFacts(kind=kind, actor=actor, markers=markers, intensity=intensity,
                        source=source, internal_signals=signals, risk=risk,
                        declined_relational_talk=declined)


def history_before(session) -> tuple[PastRupture, ...]:
    """The client's history before `session`, as the engine wants it: see `history_and_number`."""
    return history_and_number(session)[0]


def history_and_number(session) -> tuple[tuple[PastRupture, ...], int]:
    """The client's ruptures and attempts before `session`, and which session of the
    therapy `session` is, in one query.

    For recurrence only the last held sessions count (older history does not make a
    pattern); what failed before counts however long ago it was tried. An older rupture
    is as many sessions ago as there were held sessions from its own to this one.
    Written out in SQL: it runs on every rupture page, brief and keystroke of the live
    form, and Django would spend longer composing it than PostgreSQL spends running it.
    """
    with connection.cursor() as cursor:
        cursor.execute(_HISTORY_SQL, {
            "client": session.client_id, "before": session.starts_at,
            "held": SessionStatus.HELD, "window": RECURRENCE_WINDOW,
        })
        rows = cursor.fetchall()
    held_before = rows[0][0]
    history, attempts = {}, {}
    for _, ago, rupture_id, kind, markers, strategy, outcome in rows:
        if rupture_id is None:
            continue
        history.setdefault(rupture_id, (ago, kind, tuple(markers)))
        if strategy is not None:
            attempts.setdefault(rupture_id, []).append(Attempt(strategy, outcome))
    past = tuple(
        PastRupture(sessions_ago=ago, kind=kind, markers=markers, attempts=tuple(attempts.get(rupture_id, ())))
        for rupture_id, (ago, kind, markers) in history.items()
    )
    return past, held_before + 1


# Every held session before this one, numbered back from it (`ago`; sessions at the same
# time count alike), with the ruptures of the last `window` and, of older ones, those
# with attempts on the record, each attempt in the order it was tried. The first column
# is the count of held sessions before, which numbers this one. Only rows still on the
# record: an attempt's own deleted_at is set when its session or rupture is deleted.
_HISTORY_SQL = f"""
    WITH held AS (
        SELECT s.id, count(*) OVER (ORDER BY s.starts_at DESC) AS ago
        FROM {TherapySession._meta.db_table} s
        WHERE s.client_id = %(client)s AND s.status = %(held)s AND s.starts_at < %(before)s
              AND s.deleted_at IS NULL
    ),
    found AS (
        SELECT h.ago, r.id AS rupture_id, r.kind, r.markers, a.strategy, a.outcome,
               a_s.starts_at AS tried_at, a.created_at, a.id AS attempt_id
        FROM held h
        JOIN {RuptureEvent._meta.db_table} r ON r.session_id = h.id AND r.deleted_at IS NULL
        LEFT JOIN {RepairAttempt._meta.db_table} a ON a.rupture_id = r.id AND a.deleted_at IS NULL
        LEFT JOIN {TherapySession._meta.db_table} a_s ON a_s.id = a.session_id
        WHERE h.ago <= %(window)s OR a.id IS NOT NULL
    )
    -- One row at least, for the count, when nothing was found.
    SELECT (SELECT count(*) FROM held), f.ago, f.rupture_id, f.kind, f.markers, f.strategy, f.outcome
    FROM (SELECT) AS one LEFT JOIN found f ON TRUE
    ORDER BY f.ago, f.rupture_id, f.tried_at, f.created_at, f.attempt_id
"""


def track_records(client, kind):
    """(resolved, tried) per strategy: for this client, and clinic-wide for this kind."""
    for_client, by_kind = track_records_by_kind(client, [kind])
    return for_client, by_kind.get(kind, {})


def track_records_by_kind(client, kinds):
    """One query: the client's record per strategy, and the clinic's per kind and strategy.

    The client's own attempts through their sessions, and the clinic's from the rollup the
    database keeps (strategies.TrackRecord), never from all its history. Only attempts
    still on the record count: the default manager leaves out those hidden by a deletion
    (with their rupture, or with the session they were tried in), and the rollup counts
    an attempt only while neither it nor its rupture is deleted.
    """
    resolved = Q(outcome=RepairStatus.RESOLVED)
    client_rows = (
        RepairAttempt.objects.filter(rupture__session__client=client, rupture__deleted_at__isnull=True)
        .values("strategy").order_by()
        .annotate(scope=Value(""), tried=Count("pk"), resolved=Count("pk", filter=resolved))
        .values_list("scope", "strategy", "tried", "resolved")
    )
    clinic_rows = (
        TrackRecord.objects.filter(kind__in=kinds).values("kind", "strategy").order_by()
        .annotate(tried=Sum("attempts"), resolved=Coalesce(Sum("attempts", filter=resolved), 0))
        .values_list("kind", "strategy", "tried", "resolved")
    )
    for_client, by_kind = {}, {kind: {} for kind in kinds}
    # The client's rows say scope "" (no kind is empty); the clinic's say their kind.
    for scope, strategy, tried, resolved_n in client_rows.union(clinic_rows, all=True):
        if not tried:
            continue
        if scope == "":
            for_client[strategy] = (resolved_n, tried)
        elif scope in by_kind:
            by_kind[scope][strategy] = (resolved_n, tried)
    return for_client, by_kind


@dataclass(frozen=True)
class Known:
    """What the engine reads from the database for one session, read once for all its ruptures."""

    history: tuple
    session_number: int
    for_client: dict
    for_clinic: dict  # kind -> {strategy: (resolved, tried)}


def known_before(session, kinds) -> Known:
    """Three queries whatever the number of ruptures: the brief asks for many at once."""
    for_client, by_kind = track_records_by_kind(session.client, sorted(set(kinds)))
    history, session_number = history_and_number(session)
    return Known(history=history, session_number=session_number, for_client=for_client, for_clinic=by_kind)


def advice_for(session, facts: RuptureFacts, known: Known | None = None) -> ShownAdvice:
    known = known or known_before(session, [facts.kind])
    history, session_number = known.history, known.session_number
    facts = replace(facts, session_number=session_number)
    for_client, for_clinic = known.for_client, known.for_clinic.get(facts.kind, {})
    # The client's own record breaks ties first; where it is silent, the clinic's.
    record = {s: for_client.get(s) or for_clinic.get(s) for s in for_client.keys() | for_clinic.keys()}
    advice = advise(facts, history, track_record=record, protocol=settings.RISK_PROTOCOL_NAME)
    shown = [
        ShownSuggestion(
            suggestion=s,
            for_client=format_track_record(*for_client.get(s.strategy, (0, 0))),
            for_clinic=format_track_record(*for_clinic.get(s.strategy, (0, 0))),
            rank=rank,
        )
        for rank, s in enumerate(advice.suggestions, start=1)
    ]
    groups = [
        (when, label, [s for s in shown if s.when == when])
        for when, label in v.WHENS
    ]
    return ShownAdvice(
        advice=advice, suggestions=shown, groups=[g for g in groups if g[2]],
        protocol_name=settings.RISK_PROTOCOL_NAME, protocol_url=settings.RISK_PROTOCOL_URL,
        session_number=session_number,
    )


def suggestions_for(session, facts: RuptureFacts, known: Known | None = None) -> list[ShownSuggestion]:
    return advice_for(session, facts, known).suggestions
