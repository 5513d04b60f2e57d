"""The Django side of the engine: facts and history from the database, in few queries.

The engine (`strategies.engine`) is pure Python; this module feeds it a rupture as
logged (or as the form stands so far), the client's recent history and the clinic's
own record of what worked, and hands back what the templates show.
"""

from dataclasses import dataclass

from django.contrib.postgres.aggregates import JSONBAgg
from django.db.models import Count, F, Q, Sum, Value
from django.db.models.functions import Coalesce, JSONObject

from ruptures import vocabulary as v
from ruptures.models import RepairAttempt, RepairStatus
from sessions.models import SessionStatus, TherapySession
from strategies.engine import PastRupture, RuptureFacts, Suggestion, format_track_record, suggest
from strategies.models import TrackRecord
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
            filter=Q(ruptures__isnull=False),
        ))
        .values_list("found", flat=True)[:RECURRENCE_WINDOW]
    )
    return tuple(
        PastRupture(sessions_ago=ago, kind=found["kind"], markers=tuple(found["markers"]))
        for ago, ruptures in enumerate(recent, start=1)
        for found in ruptures or ()
    )


def track_records(client, kind):
    """(resolved, tried) per strategy: for this client, and clinic-wide for this kind.

    In one query: the client's own attempts through their sessions, and the clinic's from
    the rollup the database keeps (strategies.TrackRecord), never from all its history.
    Attempts of soft-deleted ruptures count in neither.
    """
    resolved = Q(outcome=RepairStatus.RESOLVED)
    client_rows = (
        RepairAttempt.objects.filter(rupture__session__client=client, rupture__deleted_at__isnull=True)
        .values("strategy").order_by()
        .annotate(scope=Value("client"), tried=Count("pk"), resolved=Count("pk", filter=resolved))
        .values_list("scope", "strategy", "tried", "resolved")
    )
    clinic_rows = (
        TrackRecord.objects.filter(kind=kind).values("strategy").order_by()
        .annotate(scope=Value("clinic"), tried=Sum("attempts"),
                  resolved=Coalesce(Sum("attempts", filter=resolved), 0))
        .values_list("scope", "strategy", "tried", "resolved")
    )
    found = {"client": {}, "clinic": {}}
    for scope, strategy, tried, resolved_n in client_rows.union(clinic_rows, all=True):
        if tried:
            found[scope][strategy] = (resolved_n, tried)
    return found["client"], found["clinic"]


def suggestions_for(session, facts: RuptureFacts) -> list[ShownSuggestion]:
    history = history_before(session)
    for_client, for_clinic = track_records(session.client, facts.kind)
    # The client's own record breaks ties first; where it is silent, the clinic's.
    record = {s: for_client.get(s) or for_clinic.get(s) for s in for_client.keys() | for_clinic.keys()}
    return [
        ShownSuggestion(
            suggestion=s,
            for_client=format_track_record(*for_client.get(s.strategy, (0, 0))),
            for_clinic=format_track_record(*for_clinic.get(s.strategy, (0, 0))),
        )
        for s in suggest(facts, history, track_record=record)
    ]
