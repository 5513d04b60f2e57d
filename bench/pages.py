"""The pages bench/bench_pages.py loads, and who loads them, picked from a demo clinic.

The same people at every scale: the demo gives therapist001 25 clients and
supervisor001 10 therapists whatever the clinic's size, so a page's time at two sizes
compares the same work on a larger clinic. Needs Django set up on the clinic's database.
"""

import time
from dataclasses import dataclass, field

THERAPIST = "therapist001"
SUPERVISOR = "supervisor001"
BASELINE = "/bench/baseline/"
EMPTY = "/bench/empty/"  # the middleware alone (bench/breakdown.py)


@dataclass(frozen=True)
class Target:
    name: str
    path: str
    who: str  # "therapist" or "supervisor": whose cookie the request carries
    headers: dict = field(default_factory=dict)
    expect: str = ""  # text the answer must contain, checked before any timing
    live: bool = False  # measured with the supervision cache off


def pick_targets(therapist=THERAPIST, supervisor=SUPERVISOR) -> list[Target]:
    """Every page of the issue, for the therapist's caseload, and the bare baseline."""
    from accounts.models import User
    from ruptures.models import RuptureEvent
    from sessions.models import Client, ClientStatus, SessionStatus, TherapySession

    user = User.objects.get(username=therapist)
    clients = Client.objects.filter(therapist=user, status=ClientStatus.ACTIVE).order_by("code")
    # The client with open ruptures before a booked session: the brief has something to say.
    briefed = (
        TherapySession.objects.filter(client__in=clients, status=SessionStatus.SCHEDULED)
        .filter(client__sessions__ruptures__repair_status__in=["unaddressed", "attempted"])
        .order_by("starts_at", "pk").distinct().first()
    )
    client = briefed.client if briefed else clients.first()
    rupture = (
        RuptureEvent.objects.filter(session__client=client, attempts__isnull=False)
        .order_by("-session__starts_at", "-pk").first()
        or RuptureEvent.objects.filter(session__client=client).order_by("-pk").first()
    )
    held = (
        TherapySession.objects.filter(client=client, status=SessionStatus.HELD)
        .order_by("-starts_at").first()
    )
    # The first of the supervisees' clients by code: the top of the supervisor's list.
    supervised = Client.objects.visible_to(User.objects.get(username=supervisor)).order_by("code").first()
    live_form = (
        f"/sessions/{held.pk}/ruptures/new?kind=withdrawal&actor=client&markers=minimal_response"
        "&markers=topic_shift&intensity=3&source=unknown"
    )
    htmx = {"HX-Request": "true", "HX-Target": "suggestions",
            "HX-Current-URL": f"https://127.0.0.1/sessions/{held.pk}/ruptures/new"}
    return [
        Target("bare page (50 rows)", BASELINE, "therapist", expect="<tr><td>"),
        Target("home /", "/", "therapist", expect=client.code),
        Target("client list", "/clients/", "therapist", expect=client.code),
        Target("client page", f"/clients/{client.code}/", "therapist", expect=client.code),
        Target("rupture page", f"/ruptures/{rupture.pk}/", "therapist", expect="resolved"),
        Target("session brief", f"/sessions/{(briefed or held).pk}/brief", "therapist",
               expect=client.code),
        Target("live suggestions", live_form, "therapist", headers=htmx,
               expect='id="suggestions-peek-text" hx-swap-oob'),
        # Not in the list, but a supervisor's everyday page: their escalated flags
        # were read through every flag of the clinic until the bench watched flags.
        Target("supervisor home /", "/", "supervisor", expect='href="/supervision/therapist001/"'),
        # Also not in the list: a supervisor's clients, read through the therapist index
        # (a form that planned as a walk of every client was tried and left out).
        Target("supervisor's client list", "/clients/", "supervisor", expect=supervised.code),
        Target("/supervision/ cached", "/supervision/", "supervisor", expect="<svg class=\"trend\""),
        Target("/supervision/ live", "/supervision/", "supervisor", expect="<svg class=\"trend\"",
               live=True),
    ]


def sign_in(username) -> str:
    """A session cookie for `username`, written straight to the database.

    Signed in as the person really is: a supervisor with a verified second factor and
    within the 12-hour limit, so each request pays what a real one does.
    """
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts import mfa
    from accounts.middleware import SIGNED_IN_AT
    from accounts.models import User

    user = User.objects.get(username=username)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    if mfa.is_required(user):
        device, _ = TOTPDevice.objects.get_or_create(user=user, name="bench", defaults={"confirmed": True})
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session[mfa.ENROLLED] = True
    session[SIGNED_IN_AT] = time.time()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def main():
    """Print the targets and the signed-in cookies as JSON, for bench/bench_pages.py."""
    import json
    import os
    import sys
    from dataclasses import asdict
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.bench_settings")
    import django

    django.setup()
    print(json.dumps({
        "targets": [asdict(t) for t in pick_targets()],
        "cookies": {"therapist": sign_in(THERAPIST), "supervisor": sign_in(SUPERVISOR)},
    }))


if __name__ == "__main__":
    main()
