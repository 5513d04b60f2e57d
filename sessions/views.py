from django.contrib import messages
from django.db.models import OuterRef, Prefetch, Q, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import name_fields
from audit.log import record
from audit.models import Action
from audit.views import confirm_soft_delete
from checks.pages import session_checks
from checks.services import record_no_rupture
from checks.trend import points_for, trend_svg
from config import folds
from reminders.services import enqueue_sweep
from ruptures.models import RuptureEvent, open_ruptures_of_client
from sessions.access import get_client_for, get_session_for
from sessions.forms import ClientForm, DischargeForm, SessionForm, SessionStatusForm
from sessions.models import Client, ClientStatus, SessionStatus, TherapySession

CLIENTS_PER_PAGE = 50
TIMELINE_SHOWN_AT_FIRST = 12


@require_GET
def client_list(request):
    # PostgreSQL refuses NUL in text, and a query that cannot match must not be a 500.
    query = request.GET.get("q", "").replace("\x00", "").strip()
    status = request.GET.get("status", "")
    # Subqueries through the default managers: a join such as Count("sessions__ruptures")
    # would count deleted rows.
    # Only the columns the list shows: a page of 50 clients with their therapists read
    # every column of both (the password hash among them) to print five.
    clients = Client.objects.visible_to(request.user).select_related("therapist").only(
        "code", "status", *name_fields("therapist")
    ).annotate(
        open_ruptures=Coalesce(Subquery(open_ruptures_of_client()), 0),
        last_session=Subquery(
            TherapySession.objects.filter(client=OuterRef("pk"), status=SessionStatus.HELD)
            .order_by("-starts_at").values("starts_at")[:1]
        ),
    )
    if query:
        clients = clients.filter(Q(code__icontains=query) | Q(name__icontains=query))
    if status in ClientStatus.values:
        clients = clients.filter(status=status)
    page = folds.page(clients.order_by("code"), request.GET.get("page"), CLIENTS_PER_PAGE)
    context = {
        "page": page, "q": query, "status": status, "statuses": ClientStatus.choices,
        "can_add": request.user.is_therapist,
    }
    template = "sessions/client_list.html#results" if request.htmx else "sessions/client_list.html"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
def client_new(request):
    if not request.user.is_therapist:
        return redirect("client_list")
    form = ClientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        client = form.save(commit=False)
        client.therapist = request.user
        client.save()
        messages.success(request, f"Client {client.code} added.")
        return redirect(client)
    return render(request, "sessions/client_form.html", {"form": form})


@require_GET
def client_detail(request, code):
    client = get_client_for(request.user, code)
    record(request, Action.VIEW, "client", client=client)
    # The newest sessions first, as many as a screen holds; years of weekly sessions
    # fold behind a link (?all=timeline), so the page costs the same however long the
    # therapy.
    timeline = folds.fold(
        # Neither each session's therapist (the timeline never names them, and the join
        # hashed every user of the clinic) nor, with its ruptures, their session again:
        # the prefetch hands each rupture the session it came under.
        client.sessions.prefetch_related(Prefetch("ruptures", queryset=RuptureEvent.objects.order_by("pk")))
        .order_by("-starts_at"),
        TIMELINE_SHOWN_AT_FIRST, whole=request.GET.get("all") == "timeline",
    )
    context = {
        "client": client,
        "sessions": timeline.rows,
        "earlier_sessions": timeline.more,
        "open_ruptures": RuptureEvent.objects.open_of_client(client).select_related("session")
        .order_by("session__starts_at", "pk"),
        "can_edit": client.is_editable_by(request.user),
        "now": timezone.now(),
    }
    points = points_for(client)
    context.update(check_points=points, check_trend=trend_svg(points) if points else None)
    return render(request, "sessions/client_detail.html", context)


@require_http_methods(["GET", "POST"])
def client_edit(request, code):
    client = get_client_for(request.user, code, write=True)
    form = ClientForm(request.POST or None, instance=client)
    if request.method == "POST" and form.is_valid():
        client = form.save(commit=False)
        if client.status != ClientStatus.DISCHARGED:
            # Taken back into therapy: the ending was of a therapy that goes on after all.
            client.ending, client.discharged_at = "", None
        client.save()
        messages.success(request, f"Client {client.code} updated.")
        return redirect(client)
    return render(request, "sessions/client_form.html", {"form": form, "client": client})


@require_http_methods(["GET", "POST"])
def client_discharge(request, code):
    """Ask how the therapy ended, with the client's open ruptures in view first."""
    client = get_client_for(request.user, code, write=True)
    form = DischargeForm(request.POST if request.method == "POST" else None, initial={"ending": client.ending})
    if request.method == "POST" and form.is_valid():
        client.ending = form.cleaned_data["ending"]
        client.discharged_at = client.discharged_at or timezone.now()
        client.status = ClientStatus.DISCHARGED
        client.save(update_fields=["ending", "discharged_at", "status"])
        messages.success(request, f"Client {client.code} discharged: {client.get_ending_display().lower()}.")
        return redirect(client)
    open_ruptures = (
        RuptureEvent.objects.open_of_client(client).select_related("session").order_by("session__starts_at", "pk")
    )
    context = {"client": client, "form": form, "open_ruptures": open_ruptures}
    return render(request, "sessions/client_discharge.html", context, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def session_new(request, code):
    client = get_client_for(request.user, code, write=True)
    form = SessionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        session = form.save(commit=False)
        session.client = client
        session.therapist = request.user
        session.save()
        enqueue_sweep(client_id=client.pk)
        messages.success(request, "Session added.")
        return redirect(session)
    return render(request, "sessions/session_form.html", {"form": form, "client": client})


@require_GET
def session_detail(request, pk):
    session = get_session_for(request.user, pk)
    record(request, Action.VIEW, "session", key=session.key, client=session.client)
    form = SessionStatusForm(session=session, initial={"status": session.status})
    return _session_page(request, session, form)


def _session_page(request, session, status_form, status=200, check_form=None):
    ruptures = list(session.ruptures.order_by("pk"))
    can_edit = session.client.is_editable_by(request.user)
    context = {
        "session": session,
        "ruptures": ruptures,
        "can_edit": can_edit,
        "status_form": status_form,
        # The alliance check, both sides (checks.pages).
        **session_checks(session, request.user, form=check_form, editable=can_edit, ruptures_logged=bool(ruptures)),
    }
    return render(request, "sessions/session_detail.html", context, status=status)


def render_session_page(request, session, *, check_form=None, status=200):
    """The session page with a form of another app in error (the alliance check)."""
    form = SessionStatusForm(session=session, initial={"status": session.status})
    return _session_page(request, session, form, status=status, check_form=check_form)


@require_POST
def session_status(request, pk):
    session = get_session_for(request.user, pk, write=True)
    form = SessionStatusForm(request.POST, session=session)
    if not form.is_valid():
        return _session_page(request, session, form, status=400)
    session.status = form.cleaned_data["status"]
    session.save(update_fields=["status"])
    enqueue_sweep(client_id=session.client_id)
    messages.success(request, f"Session marked {session.get_status_display().lower()}.")
    return redirect(session)


@require_POST
def session_no_rupture(request, pk):
    session = get_session_for(request.user, pk, write=True)
    if not (session.status == SessionStatus.HELD or session.is_loggable):
        messages.error(request, "Only a session that was held can be noted as rupture-free.")
        return redirect(session)
    if session.ruptures.exists():
        # A page opened before a rupture was logged in another tab can still post this.
        messages.error(request, "A rupture is logged for this session, so it was not rupture-free.")
        return redirect(session)
    # As with logging a rupture: saying how it went says the session took place.
    session.status = SessionStatus.HELD
    session.no_rupture_noted_at = timezone.now()
    session.save(update_fields=["status", "no_rupture_noted_at"])
    # The same answer in the therapist's alliance check: `tension` = `no`.
    record_no_rupture(session=session, by=request.user)
    enqueue_sweep(client_id=session.client_id)
    messages.success(request, "Noted: no rupture in this session.")
    return redirect(safe_next(request) or session)


def safe_next(request):
    """The form's `next` field, if it points back into this site."""
    url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}):
        return url
    return None



@require_http_methods(["GET", "POST"])
def session_delete(request, pk):
    session = get_session_for(request.user, pk, write=True)
    ruptures = session.ruptures.count()
    subject = f"{session.client.code}: session of {date_format(timezone.localtime(session.starts_at), 'D j M Y, H:i')}"
    if ruptures:
        subject += f", with {ruptures} rupture{pluralize(ruptures)}"
    return confirm_soft_delete(
        request, session, title="Delete this session?", subject=subject, done=session.client,
        message="Session deleted, with its ruptures. It stays in the record's history.",
        warning="Its ruptures, their repair attempts, the attempts recorded in it and its reminders "
                "are hidden with it.",
    )


@require_http_methods(["GET", "POST"])
def client_delete(request, code):
    client = get_client_for(request.user, code, write=True)
    return confirm_soft_delete(
        request, client, title=f"Delete client {client.code}?", subject=f"Client {client.code}", done="client_list",
        message=f"Client {client.code} deleted, with all of their record.",
        warning="Their sessions, ruptures, repair attempts, reminders and alliance data are hidden with them.",
    )
