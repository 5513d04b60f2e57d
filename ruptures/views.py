from dataclasses import replace

from django.contrib import messages
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import capfirst
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.log import record
from audit.models import Action
from audit.views import confirm_soft_delete
from ruptures import services
from ruptures.access import get_rupture_for
from ruptures.forms import MISSING_VERSION, RepairAttemptForm, RepairStatusForm, RuptureForm
from ruptures.history import history_of
from ruptures.models import Kind, RuptureEvent, Strategy
from sessions.access import get_session_for
from strategies.suggestions import advice_for, facts_from, facts_of


@require_http_methods(["GET", "POST"])
def rupture_new(request, pk):
    session = get_session_for(request.user, pk, write=True)
    if not session.is_loggable:
        messages.error(request, "Ruptures can be logged only for a session that has taken place.")
        return redirect(session)
    if request.method == "POST" and "_refresh" not in request.POST:
        form = RuptureForm(request.POST, session=session)
        if form.is_valid():
            rupture = services.log_rupture(session=session, data=form.cleaned_data, by=request.user)
            messages.success(request, "Rupture logged.")
            return redirect(rupture)
        return _render_form(request, form, session, status=400)
    form = RuptureForm(initial=_typed_so_far(request), session=session)
    return _render_form(request, form, session)


def _typed_so_far(request):
    """The form as typed so far, when the kind was chosen and the markers must follow.

    htmx asks with a GET carrying only the kind and the ticked markers. A browser
    without JavaScript posts the whole form with `_refresh` instead, so that nothing
    typed is lost and no free text ends up in a URL.
    """
    data = request.POST if "_refresh" in request.POST else request.GET
    return {
        key: data.getlist(key) if key in RuptureForm.MULTI_FIELDS else data.get(key)
        for key in data
        if key in RuptureForm.base_fields
    }


@require_http_methods(["GET", "POST"])
def rupture_edit(request, pk):
    rupture = get_rupture_for(request.user, pk, write=True)
    session = rupture.session
    conflict = None
    if request.method == "POST" and "_refresh" not in request.POST:
        form = RuptureForm(request.POST, instance=rupture, session=session)
        if form.is_valid():
            try:
                services.update_rupture(
                    rupture=rupture, data=form.cleaned_data,
                    expected_version=form.cleaned_data["version"], by=request.user,
                )
            except services.EditConflict as exc:
                conflict = exc
                form = _form_after_conflict(request, exc, session)
            else:
                messages.success(request, "Rupture updated.")
                return redirect(rupture)
        status = 409 if conflict else 400
        return _render_form(request, form, session, rupture=rupture, conflict=conflict, status=status)
    form = RuptureForm(instance=rupture, initial=_typed_so_far(request), session=session)
    return _render_form(request, form, session, rupture=rupture)


def _form_after_conflict(request, conflict, session):
    """The user's own input again, now based on the version that beat it."""
    data = request.POST.copy()
    data["version"] = conflict.current.version
    form = RuptureForm(data, instance=conflict.current, session=session)
    form.is_valid()
    return form


def _conflict_rows(conflict):
    """The conflict's differences as the form words them: labels, not column names or slugs."""
    if conflict is None:
        return []
    return [
        (_label_of(change.field), _shown(change.field, change.theirs), _shown(change.field, change.yours))
        for change in conflict.changes
    ]


def _label_of(name):
    label = RuptureForm.base_fields[name].label or RuptureEvent._meta.get_field(name).verbose_name
    return capfirst(label)


def _shown(name, value):
    field = RuptureEvent._meta.get_field(name)
    choices = dict(getattr(field, "base_field", field).flatchoices)
    if isinstance(value, list | tuple):
        return ", ".join(str(choices.get(item, item)) for item in value)
    return str(choices.get(value, value)) if value not in (None, "") else ""


def _render_form(request, form, session, *, rupture=None, conflict=None, status=200):
    context = {
        "form": form, "session": session, "rupture": rupture, "conflict": conflict,
        "conflict_rows": _conflict_rows(conflict),
    }
    template = "ruptures/rupture_form.html"
    if request.htmx and request.method == "GET" and request.htmx.target == "suggestions":
        live = _live_suggestions(request.GET, session, fallback=rupture)
        return render(request, template + "#suggestions", {**context, **live})
    if request.htmx and request.method == "GET" and request.htmx.target == "risk":
        return render(request, template + "#risk", context)
    if request.htmx and request.method == "GET":
        template += "#markers"
    else:
        context.update(_live_suggestions(request.POST or request.GET, session, fallback=rupture))
    return render(request, template, context, status=status)


def _live_suggestions(data, session, fallback=None):
    """Suggestions for the form as filled so far; they help, saving never needs them."""
    facts = facts_from(data)
    if facts is None and fallback is not None:
        facts = facts_of(fallback)
    if facts is None:
        return {"suggestions": [], "advice": None}
    if fallback is not None:
        # Editing: what was tried on this rupture still counts.
        facts = replace(facts, attempts=facts_of(fallback, fallback.attempts.all()).attempts)
    advice = advice_for(session, facts)
    return {
        "advice": advice,
        "suggestions": advice.suggestions,
        "client_code": session.client.code,
        "kind_label": Kind(facts.kind).label,
    }


@require_GET
def rupture_detail(request, pk):
    rupture = get_rupture_for(request.user, pk)
    record(request, Action.VIEW, "rupture", key=rupture.key, client=rupture.session.client)
    can_edit = rupture.session.client.is_editable_by(request.user)
    attempts = list(rupture.attempts.select_related("session", "created_by"))
    advice = advice_for(rupture.session, facts_of(rupture, attempts))
    context = {
        "rupture": rupture,
        "client": rupture.session.client,
        "attempts": attempts,
        "can_edit": can_edit,
    }
    context.update(
        advice=advice,
        suggestions=advice.suggestions,
        client_code=rupture.session.client.code,
        kind_label=rupture.get_kind_display(),
        history=history_of(rupture),
    )
    if can_edit:
        context["attempt_form"] = _attempt_form(request, rupture)
        context["status_form"] = RepairStatusForm(
            initial={"repair_status": rupture.repair_status, "version": rupture.version}
        )
    return render(request, "ruptures/rupture_detail.html", context)


def _attempt_form(request, rupture, data=None):
    strategy = request.GET.get("strategy")
    initial = {"strategy": strategy} if strategy in Strategy.values else {}
    return RepairAttemptForm(data, rupture=rupture, initial=initial)


@require_http_methods(["GET", "POST"])
def attempt_new(request, pk):
    rupture = get_rupture_for(request.user, pk, write=True)
    form = _attempt_form(request, rupture, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        services.record_attempt(rupture=rupture, by=request.user, **form.cleaned_data)
        messages.success(request, "Repair attempt recorded.")
        return redirect(rupture)
    status = 400 if request.method == "POST" else 200
    return render(request, "ruptures/attempt_form.html", {"rupture": rupture, "form": form}, status=status)


@require_POST
def rupture_status(request, pk):
    rupture = get_rupture_for(request.user, pk, write=True)
    form = RepairStatusForm(request.POST)
    if not form.is_valid() and "version" in form.errors:
        return HttpResponseBadRequest(MISSING_VERSION, content_type="text/plain; charset=utf-8")
    if not form.is_valid():
        messages.error(request, "Choose one of the listed repair statuses.")
        return redirect(rupture)
    try:
        services.set_repair_status(
            rupture=rupture, status=form.cleaned_data["repair_status"],
            expected_version=form.cleaned_data["version"], by=request.user,
        )
    except services.EditConflict as exc:
        messages.error(
            request,
            f"{exc.current.updated_by} changed this rupture after you opened it; "
            "nothing was saved. Check the current status below and try again.",
        )
        return redirect(rupture)
    messages.success(request, f"Status set to {rupture.get_repair_status_display().lower()}.")
    return redirect(rupture)


@require_http_methods(["GET", "POST"])
def rupture_delete(request, pk):
    rupture = get_rupture_for(request.user, pk, write=True)
    when = timezone.localtime(rupture.session.starts_at)
    subject = (
        f"{rupture.get_kind_display()} rupture, intensity {rupture.intensity}, "
        f"{rupture.get_repair_status_display().lower()}: {rupture.session.client.code}, "
        f"session of {date_format(when, 'D j M Y, H:i')}"
    )
    return confirm_soft_delete(
        request, rupture, title="Delete this rupture?", subject=subject, done=rupture.session,
        message="Rupture deleted, with its repair attempts. It stays in the record's history.",
        warning="Its repair attempts and reminders are hidden with it.",
    )
