"""The Django side of the engine: facts and history from the database, in few queries.

The engine (`strategies.engine`) is pure Python; this module feeds it a rupture as
logged (or as the form stands so far), the client's recent history and the clinic's
own record of what worked, and hands back what the templates show.
"""

from dataclasses import dataclass

from django.contrib.postgres.aggregates import JSONBAgg
from django.db.models import Count, F, Q
from django.db.models.functions import JSONObject

from ruptures import vocabulary as v
from ruptures.models import RepairAttempt, RepairStatus
from sessions.models import SessionStatus, TherapySession
from strategies.engine import PastRupture, RuptureFacts, Suggestion, format_track_record, suggest
from strategies.rules import RECURRENCE_WINDOW


@dataclass(frozen=True)
class ShownSuggestion:
    suggestion: Suggestion
    for_client: str
    for_clinic: str

    def __getattr__(self, name):
        return getattr(self.suggestion, name)


def facts_of(rupture) -> RuptureFacts:
    return RuptureFacts(
        kind=rupture.kind, actor=rupture.actor, markers=tuple(rupture.markers),
        intensity=rupture.intensity, source=rupture.source,
        internal_signals=tuple(rupture.internal_signals),
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
    return RuptureFacts(kind=kind, actor=actor, markers=markers, intensity=intensity,
                        source=source, internal_signals=signals)


def history_before(session) -> tuple[PastRupture, ...]:
    """The ruptures of the client's last held sessions before `session`, in one query.

    Only the recurrence window is read: older history does not make a pattern.
    """
    recent = (
        TherapySession.objects.filter(
            client_id=session.client_id, status=SessionStatus.HELD, starts_at__lt=session.starts_at
        )
        .order_by("-starts_at")
        .annotate(found=JSONBAgg(
            JSONObject(kind=F("ruptures__kind"), markers=F("ruptures__markers")),
            # Joined past the default manager, so deleted ruptures are left out here.
            filter=Q(ruptures__isnull=False, ruptures__deleted_at__isnull=True),
        ))
        .values_list("found", flat=True)[:RECURRENCE_WINDOW]
    )
    return tuple(
        PastRupture(sessions_ago=ago, kind=found["kind"], markers=tuple(found["markers"]))
        for ago, ruptures in enumerate(recent, start=1)
        for found in ruptures or ()
    )


def track_records(client, kind):
    """(resolved, tried) per strategy: for this client, and clinic-wide for this kind."""
    for_client, by_kind = track_records_by_kind(client, [kind])
    return for_client, by_kind.get(kind, {})


def track_records_by_kind(client, kinds):
    """One query: the client's record per strategy, and the clinic's per kind and strategy.

    Only attempts still on the record count: the default manager leaves out those
    hidden by a deletion (with their rupture, or with the session they were tried in).
    """
    resolved = Q(outcome=RepairStatus.RESOLVED)
    mine = Q(rupture__session__client=client)
    rows = (
        RepairAttempt.objects.filter(mine | Q(rupture__kind__in=kinds))
        .values("strategy", "rupture__kind")
        .annotate(
            client_tried=Count("pk", filter=mine),
            client_resolved=Count("pk", filter=mine & resolved),
            tried=Count("pk"),
            resolved=Count("pk", filter=resolved),
        )
        .order_by()
    )
    for_client, by_kind = {}, {kind: {} for kind in kinds}
    for row in rows:
        strategy, kind = row["strategy"], row["rupture__kind"]
        if row["client_tried"]:
            done, tried = for_client.get(strategy, (0, 0))
            for_client[strategy] = (done + row["client_resolved"], tried + row["client_tried"])
        if kind in by_kind:
            by_kind[kind][strategy] = (row["resolved"], row["tried"])
    return for_client, by_kind


@dataclass(frozen=True)
class Known:
    """What the engine reads from the database for one session, read once for all its ruptures."""

    history: tuple
    for_client: dict
    for_clinic: dict  # kind -> {strategy: (resolved, tried)}


def known_before(session, kinds) -> Known:
    """Two queries whatever the number of ruptures: the brief asks for many at once."""
    for_client, by_kind = track_records_by_kind(session.client, sorted(set(kinds)))
    return Known(history=history_before(session), for_client=for_client, for_clinic=by_kind)


def suggestions_for(session, facts: RuptureFacts, known: Known | None = None) -> list[ShownSuggestion]:
    known = known or known_before(session, [facts.kind])
    for_client, for_clinic = known.for_client, known.for_clinic.get(facts.kind, {})
    # The client's own record breaks ties first; where it is silent, the clinic's.
    record = {s: for_client.get(s) or for_clinic.get(s) for s in for_client.keys() | for_clinic.keys()}
    return [
        ShownSuggestion(
            suggestion=s,
            for_client=format_track_record(*for_client.get(s.strategy, (0, 0))),
            for_clinic=format_track_record(*for_clinic.get(s.strategy, (0, 0))),
        )
        for s in suggest(facts, known.history, track_record=record)
    ]
