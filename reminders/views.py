from django.db.models import Prefetch
from django.shortcuts import render
from django.views.decorators.http import require_GET

from audit.log import record
from audit.models import Action
from ruptures.models import RepairAttempt, RuptureEvent
from sessions.access import get_session_for
from strategies.suggestions import advice_for, facts_of, known_before
from supervision.models import SupervisionNote

# The brief opens the best suggestions for each rupture and folds the rest: a page to
# read in the minute before a session.
SUGGESTIONS_EXPANDED = 2


@require_GET
def session_brief(request, pk):
    """Before a session: the client's open ruptures, the plans, and what to try now."""
    session = get_session_for(request.user, pk)
    client = session.client
    record(request, Action.VIEW, "brief", key=session.key, client=client)
    flags = {f.rupture_id: f for f in session.flags.filter(reason="rupture").select_related("rupture__session")}
    # The history of each rupture comes with it in two queries for all of them: what
    # was tried (with its session) and what supervision said (with who said it).
    open_ruptures = list(
        RuptureEvent.objects.open_of_client(client)
        .filter(session__starts_at__lt=session.starts_at)
        .select_related("session")
        .prefetch_related(
            Prefetch("attempts", queryset=RepairAttempt.objects.select_related("session")),
            Prefetch("supervision_notes", queryset=SupervisionNote.objects.select_related("supervisor")),
        )
        .order_by("session__starts_at", "pk")
    )
    # Suggestions are computed afresh: the client's history may have moved on since
    # the rupture was logged, and the engine reads it up to this session, once for all.
    known = known_before(session, [r.kind for r in open_ruptures])
    items = [
        {"rupture": r, "flag": flags.get(r.pk), "advice": advice_for(session, facts_of(r, r.attempts.all()), known)}
        for r in open_ruptures
    ]
    shown = {item["rupture"].pk for item in items}
    context = {
        "session": session,
        "client": client,
        "items": items,
        # Flagged before this session but repaired since: kept, and shown as such.
        "repaired": sorted(
            (f for f in flags.values() if f.rupture_id not in shown),
            key=lambda f: (f.rupture.session.starts_at, f.rupture_id),
        ),
        "can_edit": client.is_editable_by(request.user),
        "client_code": client.code,
        "suggestions_expanded": SUGGESTIONS_EXPANDED,
        # The client's voice: checks that reported a rupture nobody logged, or a drop.
        "check_flags": session.flags.from_checks().filter(alliance_check__deleted_at__isnull=True)
        .select_related("alliance_check__session", "alliance_check__instrument")
        .order_by("alliance_check__session__starts_at", "pk"),
    }
    return render(request, "reminders/session_brief.html", context)

