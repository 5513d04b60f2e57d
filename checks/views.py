from urllib.parse import urlencode

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST

from audit.log import record
from audit.models import Action
from checks import ratelimit, services
from checks.forms import CheckForm
from checks.models import Instrument, Respondent
from reminders.services import enqueue_sweep
from sessions import views as session_views
from sessions.access import get_session_for
from sessions.models import SessionStatus


@require_POST
def therapist_check(request, pk):
    session = get_session_for(request.user, pk, write=True)
    if session.status != SessionStatus.HELD:
        messages.error(request, "The check is answered after a session that was held.")
        return redirect(session)
    current = session.checks.therapist().select_related("instrument").first()
    instrument = current.instrument if current else Instrument.objects.current(Respondent.THERAPIST)
    if instrument is None:
        messages.error(request, "No alliance check is loaded for this clinic (see load_instrument).")
        return redirect(session)
    form = CheckForm(request.POST, instrument=instrument)
    if not form.is_valid():
        return session_views.render_session_page(request, session, check_form=form, status=400)
    check = services.record_therapist_check(session=session, answers=form.answers(), by=request.user,
                                            instrument=instrument)
    enqueue_sweep(client_id=session.client_id)
    if check.tension == "yes" and not session.ruptures.exists():
        messages.success(request, "Check saved. You noted tension: log it as a rupture while it is fresh.")
    else:
        messages.success(request, "Check saved.")
    return redirect(session_views.safe_next(request) or f"{session.get_absolute_url()}#check-h")


def log_offered_rupture_url(session, check):
    """The rupture form, with the intensity the therapist just gave carried over."""
    query = {"intensity": check.intensity} if check.intensity else {}
    return reverse("rupture_new", args=[session.pk]) + (f"?{urlencode(query)}" if query else "")


@require_POST
def ask_client(request, pk):
    session = get_session_for(request.user, pk, write=True)
    if not services.may_ask_client(session):
        messages.error(request, "A client link is for a session of today, or one held in the last "
                       f"{settings.CLIENT_CHECK_HOURS} hours, that the client has not answered yet.")
        return redirect(session)
    link, token = services.make_client_link(session=session, by=request.user)
    record(request, Action.LINK, "client_check", key=session.key, client=session.client)
    url = client_url(request, token)
    context = {"session": session, "url": url, "qr": qr_svg(url), "link": link}
    return render(request, "checks/client_link.html", context)


def client_url(request, token):
    path = reverse("client_check", args=[token])
    return request.build_absolute_uri(path) if request is not None else settings.SITE_URL.rstrip("/") + path


def qr_svg(url):
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    svg = image.to_string(encoding="unicode")
    # A role and a name for screen readers; the URL itself is printed beside it.
    svg = svg.replace("<svg ", '<svg role="img" aria-label="QR code of the link" class="qr" ', 1)
    return mark_safe(svg)  # noqa: S308 - drawn by qrcode from our own URL


@login_not_required
@require_http_methods(["GET", "POST"])
def client_check(request, token):
    """The client's page: no sign-in, no PHI, the clinic's name and the questions only."""
    if not ratelimit.allow(request.META.get("REMOTE_ADDR")):
        return render(request, "checks/client_gone.html", {"clinic": settings.CLINIC_NAME, "busy": True}, status=429)
    link = services.usable_link(token)
    instrument = Instrument.objects.current(Respondent.CLIENT)
    if link is None or instrument is None:
        return _gone(request)
    session = link.session
    if request.method == "GET":
        record(request, Action.OPEN, "client_check", key=session.key, client=session.client)
        return _client_page(request, CheckForm(instrument=instrument))
    declined = "decline" in request.POST
    form = CheckForm(request.POST, instrument=instrument)
    if not declined and not form.is_valid():
        return _client_page(request, form, status=400)
    check = services.submit_client_check(
        token=token, answers={} if declined else form.answers(), declined=declined
    )
    if check is None:
        return _gone(request)
    record(request, Action.ANSWER, "client_check", key=session.key, client=session.client,
           detail={"declined": declined})
    enqueue_sweep(client_id=session.client_id)
    return render(request, "checks/client_thanks.html", {"clinic": settings.CLINIC_NAME, "declined": declined})


def _client_page(request, form, status=200):
    context = {"clinic": settings.CLINIC_NAME, "form": form, "groups": form.groups()}
    return render(request, "checks/client_check.html", context, status=status)


def _gone(request):
    return render(request, "checks/client_gone.html", {"clinic": settings.CLINIC_NAME}, status=410)
