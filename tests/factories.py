"""Small factories over plain ORM calls: tests say what matters and default the rest."""

import itertools
from datetime import timedelta

from django.utils import timezone

from accounts.models import Role, SupervisionLink, User
from accounts.services import set_role
from ruptures.models import RepairAttempt, RuptureEvent
from sessions.models import Client, SessionStatus, TherapySession

_seq = itertools.count(1)
PASSWORD = "correct horse battery staple"


def make_user(role=Role.THERAPIST, username=None, **fields):
    username = username or f"{role}{next(_seq)}"
    user = User.objects.create_user(username=username, password=PASSWORD, email=f"{username}@clinic.example", **fields)
    return set_role(user=user, role=role)


def supervise(supervisor, therapist, **fields):
    fields.setdefault("starts_on", timezone.localdate() - timedelta(days=30))
    return SupervisionLink.objects.create(supervisor=supervisor, therapist=therapist, **fields)


def make_client(therapist, code=None, **fields):
    return Client.objects.create(code=code or f"C-{next(_seq):05d}", therapist=therapist, **fields)


def make_session(client, *, days_ago=1, status=SessionStatus.HELD, **fields):
    fields.setdefault("starts_at", timezone.now() - timedelta(days=days_ago))
    return TherapySession.objects.create(client=client, therapist=client.therapist, status=status, **fields)


def make_rupture(session, **fields):
    fields.setdefault("kind", "withdrawal")
    fields.setdefault("markers", ["minimal_response"])
    fields.setdefault("intensity", 3)
    fields.setdefault("source", "unknown")
    by = fields.pop("by", session.client.therapist)
    return RuptureEvent.objects.create(session=session, created_by=by, updated_by=by, **fields)


def make_attempt(rupture, session=None, **fields):
    fields.setdefault("strategy", "invite_discussion")
    fields.setdefault("outcome", "attempted")
    return RepairAttempt.objects.create(
        rupture=rupture, session=session or rupture.session, created_by=rupture.created_by, **fields
    )


def make_check(session, respondent="therapist", *, declined=False, key=None, **answers):
    """A submitted alliance check of the shipped instrument, meanings filled as the app fills them."""
    from checks.models import AllianceCheck, Instrument

    check = AllianceCheck(
        session=session, respondent=respondent, instrument=Instrument.objects.current(respondent), declined=declined,
    )
    if key is not None:
        check.key = key
    check.set_answers({} if declined else answers)
    check.save()
    return check
