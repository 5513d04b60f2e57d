import hashlib
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import Case, IntegerField, OuterRef, Subquery, Value, When
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import Role, SupervisionLink, User, supervisee_ids
from audit.log import record
from audit.models import Action
from ruptures.access import get_rupture_for
from ruptures.models import OPEN_STATUSES, Kind, RuptureEvent
from sessions.models import Client, ClientStatus, SessionStatus
from supervision import charts
from supervision.access import get_supervisee_for
from supervision.cache import forget, measured, rendered
from supervision.forms import FiltersForm, SupervisionNoteForm
from supervision.measures import (
    RECURRENCE_MIN_SESSIONS,
    RECURRENCE_WINDOW,
    TREND_WEEKS,
    Measures,
    Week,
    unlogged_in,
)
from supervision.models import SupervisionNote, discussed

# How many undiscussed ruptures a caseload page lists; the count above it says if more.
TO_DISCUSS_LIMIT = 50


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    numeric: bool = True

    def value(self, row):
        m = row.measures
        return {
            "name": lambda: row.name.lower(),
            "status": lambda: row.status_label,
            "recurring": lambda: m.recurring_clients,
            "trend": lambda: m.trend_change,
        }.get(self.key, lambda: getattr(m, self.key))()


def _columns(first, second, recurring):
    # What a supervisor acts on first comes first: the trend, then what is open.
    return [
        Column("name", first, numeric=False),
        Column("trend", f"Last {TREND_WEEKS} weeks"),
        second,
        Column("held_sessions", "Sessions held"),
        Column("ruptures", "Ruptures"),
        Column("per_session", "Per held session"),
        Column("open_now", "Open now"),
        Column("open_flags", "Open flags"),
        Column("undiscussed", "Not yet discussed"),
        Column("recurring", recurring),
        Column("repair_rate", "Repair rate"),
        Column("median_days", "Median days to repair"),
        Column("withdrawal", "Withdrawal"),
        Column("confrontation", "Confrontation"),
        Column("client_side", "Client-side"),
        Column("therapist_side", "Therapist-side"),
        # The alliance checks (checks app): both sides' answers after the session.
        Column("therapist_completion", "Therapist checks"),
        Column("client_completion", "Client checks"),
        Column("client_reported_rate", "Client-reported ruptures"),
        Column("tension_kappa", "Agreement on tension"),
        Column("unlogged", "Unlogged client reports"),
    ]


SUPERVISOR_COLUMNS = _columns(
    "Supervisee", Column("active_clients", "Active clients"), "Clients with a recurring pattern"
)
ADMIN_COLUMNS = _columns(
    "Supervisor / therapist", Column("active_clients", "Active clients"),
    "Clients with a recurring pattern",
)
CASELOAD_COLUMNS = _columns(
    "Client", Column("status", "Status", numeric=False), "Recurring pattern"
)


@dataclass
class Row:
    name: str
    measures: Measures
    key: str = ""
    url: str = ""
    status: str = ""
    status_label: str = ""
    children: list["Row"] = field(default_factory=list)
    chart: str = ""
    change: str = ""
    week_cells: list[str] = field(default_factory=list)


# --- The dashboard: supervisors' supervisees, or the clinic for admins ---------------

@require_GET
def dashboard(request):
    user = request.user
    if user.role == Role.SUPERVISOR:
        people = list(
            User.objects.filter(pk__in=supervisee_ids(user)).order_by("display_name", "username")
        )
        columns, label = SUPERVISOR_COLUMNS, "Supervisee"
    elif user.role == Role.ADMIN:
        people = clinic_team()
        columns, label = ADMIN_COLUMNS, "Therapist"
    else:
        raise Http404
    form = FiltersForm(
        request.GET, people=[(p.username, str(p)) for p in people], person_label=label,
        sort_keys=[c.key for c in columns],
    )
    context = {
        "form": form, "columns": columns, "people": people, "is_admin": user.role == Role.ADMIN,
    }
    if form.is_valid():
        chosen = form.cleaned_data.get("supervisee")
        if chosen:
            people = [p for p in people if p.username == chosen]
        if user.role == Role.ADMIN:
            context.update(_clinic_table(people, form, columns, user))
        else:
            context.update(_supervisor_table(people, form, columns, user))
    return _render(request, "supervision/dashboard.html", context, form)


# How the clinic's figures are grouped: per supervisor and therapist, per supervisor, in all.
CLINIC_SETS = (("group_id", "therapist_id"), ("group_id",), ())


def clinic_team():
    # Each therapist with their current supervisor (the latest active link, if several).
    current = (
        SupervisionLink.objects.active().filter(therapist=OuterRef("pk"))
        .order_by("-starts_on", "-pk").values("supervisor_id")[:1]
    )
    return list(
        User.objects.filter(role=Role.THERAPIST).annotate(supervisor_id=Subquery(current))
        .order_by("display_name", "username")
    )


def _supervisor_table(people, form, columns, viewer):
    period, kind = form.cleaned_data["range"], form.cleaned_data["kind"]
    results, taken_at, key = measured(viewer, [(p.pk, None) for p in people], period, kind, (("therapist_id",), ()))
    drill = "?" + _query(form, "kind")
    rows = [
        Row(name=str(p), key=p.username, measures=_get(results[("therapist_id",)], (p.pk,), period),
            url=reverse("supervision_caseload", args=[p.username]) + drill)
        for p in people
    ]
    total = Row(name="All supervisees", measures=_get(results[()], (), period))
    return {**_finish(form, columns, rows, total, period), "taken_at": taken_at, "figures_key": key}


def _clinic_table(people, form, columns, viewer):
    period, kind = form.cleaned_data["range"], form.cleaned_data["kind"]
    results, taken_at, key = measured(viewer, [(p.pk, p.supervisor_id) for p in people], period, kind, CLINIC_SETS)
    supervisor_ids = {p.supervisor_id for p in people if p.supervisor_id}
    names = {u.pk: str(u) for u in User.objects.filter(pk__in=supervisor_ids)}
    groups = {}
    for p in people:
        group = groups.get(p.supervisor_id)
        if group is None:
            name = names.get(p.supervisor_id, "No current supervisor")
            group = groups[p.supervisor_id] = Row(
                name=name, key=f"group-{p.supervisor_id or 'none'}",
                measures=_get(results[("group_id",)], (p.supervisor_id,), period),
            )
        group.children.append(Row(
            name=str(p), key=p.username,
            measures=_get(results[("group_id", "therapist_id")], (p.supervisor_id, p.pk), period),
        ))
    total = Row(name="Whole clinic", measures=_get(results[()], (), period))
    return {**_finish(form, columns, list(groups.values()), total, period), "taken_at": taken_at}


def _get(by_key, key, period):
    found = by_key.get(key)
    if found is None:
        found = Measures(weeks=[Week(d) for d in period.trend_week_starts()])
    return found


def _finish(form, columns, rows, total, period):
    """Sort the rows (and rows within groups), draw their charts on one shared scale."""
    sort = form.cleaned_data["sort"]
    rows = _sorted(rows, columns, sort)
    everyone = [total, *rows, *(c for r in rows for c in r.children)]
    scale = charts.shared_scale(r.measures for r in everyone)
    for row in rows:
        row.children = _sorted(row.children, columns, sort)
    for row in everyone:
        m = row.measures
        row.chart = charts.trend_svg(m.weeks, scale, row.name, m.trend_change)
        row.change = charts.signed(m.trend_change)
        row.week_cells = [charts.week_numbers(w) for w in m.weeks]
    return {
        "rows": rows, "total": total, "period": period, "scale": scale,
        "week_labels": [charts.week_label(w) for w in total.measures.weeks],
        "headers": _headers(form, columns, sort),
        "chart_rows": [r for row in rows for r in (row, *row.children)] + [total],
        "kind_label": dict(Kind.choices).get(form.cleaned_data["kind"], ""),
        "recurrence_window": RECURRENCE_WINDOW, "recurrence_min": RECURRENCE_MIN_SESSIONS,
        "trend_weeks": TREND_WEEKS,
    }


def _sorted(rows, columns, sort):
    key = sort.lstrip("-")
    column = next(c for c in columns if c.key == key)
    # By name first so that ties keep a stable, readable order; no value sorts last.
    rows = sorted(rows, key=lambda r: r.name.lower())
    present = [r for r in rows if column.value(r) is not None]
    missing = [r for r in rows if column.value(r) is None]
    return sorted(present, key=column.value, reverse=sort.startswith("-")) + missing


def _headers(form, columns, sort):
    """Each column's header with the URL that sorts by it (or reverses the current sort)."""
    base = _query(form, "supervisee", "kind")
    headers = []
    for column in columns:
        if sort == column.key:
            state, next_sort = "ascending", f"-{column.key}"
        elif sort == f"-{column.key}":
            state, next_sort = "descending", column.key
        else:
            # Counts are most useful biggest first; names A to Z.
            state, next_sort = "", f"-{column.key}" if column.numeric else column.key
        headers.append({"column": column, "state": state, "url": f"?{base}&sort={next_sort}"})
    return headers


def _query(form, *names):
    """The current period and the named filters as a query string, for links that keep them."""
    data = form.cleaned_data
    params = {"period": data["period"]}
    if data["period"] == "custom":
        params.update(start=data["range"].start.isoformat(), end=data["range"].end.isoformat())
    params.update({name: data[name] for name in names if data.get(name)})
    return urlencode(params)


def _render(request, template, context, form):
    # The hidden sort field carries the order in force (after any correction) to the next
    # filter change.
    valid = form.is_valid()
    context["sort"] = form.cleaned_data.get("sort", "") if valid else form.data.get("sort", "")
    figures_key = context.get("figures_key")
    if figures_key:
        # The same figures drawn for the same address (filters, sort, htmx or not).
        drawing = hashlib.sha256(f"{request.get_full_path()}|{bool(request.htmx)}".encode()).hexdigest()
        context["results_html"] = mark_safe(rendered(
            f"{figures_key}:{drawing}",
            lambda: render_to_string(f"{template}#results", context, request),
        ))
        if request.htmx:
            return HttpResponse(context["results_html"])
    if request.htmx:
        # htmx swaps only successful responses, and an invalid filter must still show
        # its message, so the partial answers 200 either way.
        return render(request, f"{template}#results", context)
    return render(request, template, context, status=400 if form.errors else 200)


# --- One supervisee's caseload, client by client -------------------------------------

@require_GET
def caseload(request, username):
    therapist = get_supervisee_for(request.user, username)
    form = FiltersForm(request.GET, sort_keys=[c.key for c in CASELOAD_COLUMNS])
    context = {"form": form, "columns": CASELOAD_COLUMNS, "therapist": therapist}
    if form.is_valid():
        record(request, Action.VIEW, "caseload", key=therapist.username)
        context.update(_caseload_table(therapist, form, request.user))
    return _render(request, "supervision/caseload.html", context, form)


def _caseload_table(therapist, form, viewer):
    period, kind = form.cleaned_data["range"], form.cleaned_data["kind"]
    results, taken_at, _ = measured(viewer, [(therapist.pk, None)], period, kind, (("client_id",), ()))
    rows = []
    for client in Client.objects.filter(therapist=therapist).order_by("code"):
        m = _get(results[("client_id",)], (client.pk,), period)
        # A client long discharged with nothing in the period is not part of the caseload.
        seen = m.held_sessions or m.ruptures or m.open_now
        if client.status != ClientStatus.ACTIVE and not seen:
            continue
        rows.append(Row(name=client.code, key=client.code, measures=m,
                        url=reverse("client_detail", args=[client.code]),
                        status=client.status, status_label=client.get_status_display()))
    total = Row(name="Whole caseload", measures=_get(results[()], (), period))
    context = _finish(form, CASELOAD_COLUMNS, rows, total, period)
    context["taken_at"] = taken_at
    context["to_discuss"] = _to_discuss(therapist, period, kind)
    context["unlogged_checks"] = list(
        unlogged_in(period).filter(session__client__therapist=therapist)
        .select_related("session__client", "instrument").order_by("-session__starts_at", "pk")[:TO_DISCUSS_LIMIT]
    )
    context["caption"] = f"Clients of {therapist}"
    return context


def _to_discuss(therapist, period, kind):
    ruptures = RuptureEvent.objects.filter(
        session__client__therapist=therapist, session__status=SessionStatus.HELD,
        session__starts_at__gte=period.start_at, session__starts_at__lt=period.end_at,
    ).exclude(discussed())
    if kind:
        ruptures = ruptures.filter(kind=kind)
    # Open ones first, then the most intense, then the most recent.
    return list(
        ruptures.annotate(
            settled=Case(When(repair_status__in=OPEN_STATUSES, then=Value(0)), default=Value(1),
                         output_field=IntegerField())
        )
        .select_related("session__client")
        .order_by("settled", "-intensity", "-session__starts_at", "-pk")[:TO_DISCUSS_LIMIT]
    )


# --- Supervision notes on a rupture ------------------------------------------------------

@require_http_methods(["GET", "POST"])
def rupture_discuss(request, pk):
    rupture = get_rupture_for(request.user, pk)
    # Readers of a rupture are its therapist and that therapist's current supervisor;
    # only the supervisor marks it discussed.
    if request.user.role != Role.SUPERVISOR:
        raise Http404
    form = SupervisionNoteForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        SupervisionNote.objects.create(
            rupture=rupture, supervisor=request.user, comment=form.cleaned_data["comment"]
        )
        forget(request.user)  # the "not yet discussed" counts must show this at once
        messages.success(request, "Marked as discussed in supervision.")
        return redirect(f"{rupture.get_absolute_url()}#supervision")
    status = 400 if request.method == "POST" else 200
    context = {"rupture": rupture, "client": rupture.session.client, "form": form}
    return render(request, "supervision/note_form.html", context, status=status)
