from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from audit.log import record
from audit.models import AccessEvent, Action
from audit.records import DeletionForm
from sessions.access import get_client_for_audit

EVENTS_PER_PAGE = 100


def confirm_soft_delete(request, record, *, title, subject, done, message, warning=""):
    """Ask for a reason, then hide the record: the shared body of every delete view."""
    form = DeletionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        record.soft_delete(by=request.user, reason=form.cleaned_data["reason"])
        messages.success(request, message)
        return redirect(done)
    context = {
        "form": form, "title": title, "subject": subject, "back": record.get_absolute_url(), "warning": warning,
    }
    return render(request, "audit/confirm_delete.html", context, status=400 if form.errors else 200)


@require_GET
def client_access_log(request, code):
    client = get_client_for_audit(request.user, code)
    # Reading the log is itself an access worth logging: auditors are audited too.
    record(request, Action.VIEW, "access-log", client=client)
    events = AccessEvent.objects.filter(client=client).select_related("user").order_by("-at", "-pk")
    page = Paginator(events, EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    if not request.user.is_clinic_admin:
        _name_records(page.object_list, client)
    return render(request, "audit/access_log.html", {"client": client, "page": page})


def _name_records(events, client):
    """Name each event's rupture or session as the pages do, by date and kind, not by its
    key: two queries for the page. Admins, who read no clinical records, see the keys."""
    from ruptures.models import RuptureEvent
    from sessions.models import TherapySession

    events = list(events)
    keys = {e.key for e in events if e.key}
    ruptures = RuptureEvent.all_objects.filter(session__client=client, key__in=keys).select_related("session")
    ruptures = {r.key: r for r in ruptures}
    sessions = {s.key: s for s in TherapySession.all_objects.filter(client=client, key__in=keys)}
    for event in events:
        event.rupture = ruptures.get(event.key) if event.what == "rupture" else None
        event.session = sessions.get(event.key) if event.what in ("session", "brief") else None
