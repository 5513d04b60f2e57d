from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from audit.deletion import DeletionError, restore_deletion
from audit.log import record
from audit.models import AccessEvent, Action
from audit.records import DeletionForm, RestoreForm
from config import folds
from sessions.access import deletions_for, get_client_for_audit, get_deletion_for

EVENTS_PER_PAGE = 100


def confirm_soft_delete(request, record, *, title, subject, done, message, warning=""):
    """Ask for a reason, then hide the record and what hangs from it: every delete view's body."""
    form = DeletionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            record.soft_delete(by=request.user, reason=form.cleaned_data["reason"])
        except DeletionError as exc:  # deleted meanwhile, in another tab
            messages.error(request, str(exc))
            return redirect(done)
        messages.success(request, f"{message} It can be restored from Deleted records.")
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
    page = folds.page(events, request.GET.get("page"), EVENTS_PER_PAGE)
    if not request.user.is_clinic_admin:
        _name_records(page.object_list, client)
    return render(request, "audit/access_log.html", {"client": client, "page": page})


@require_GET
def deletion_list(request):
    """What was deleted from the user's clients and can be undone: a therapist's page."""
    if not request.user.is_therapist:
        raise Http404
    deletions = deletions_for(request.user).select_related("by", "client").order_by("-at", "-pk")
    page = folds.page(deletions, request.GET.get("page"), EVENTS_PER_PAGE)
    return render(request, "audit/deletion_list.html", {"page": page})


@require_http_methods(["GET", "POST"])
def deletion_restore(request, pk):
    deletion = get_deletion_for(request.user, pk)
    form = RestoreForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            restore_deletion(deletion=deletion, by=request.user, reason=form.cleaned_data["reason"])
        except DeletionError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Restored {deletion.record_kind} {deletion.record_key} "
                                      "and everything deleted with it.")
            return redirect("deletion_list")
    return render(request, "audit/deletion_restore.html", {"deletion": deletion, "form": form},
                  status=400 if form.errors else 200)


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
