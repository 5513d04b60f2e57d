import secrets
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from checks.models import AllianceCheck, ClientCheckLink, Instrument, Respondent, hash_token
from sessions.models import SessionStatus, TherapySession

# 16 random bytes: 128 bits, 22 characters in the URL.
TOKEN_BYTES = 16


class NoInstrument(Exception):
    """No version of the clinic's check is loaded for this respondent."""


def _instrument(respondent):
    instrument = Instrument.objects.current(respondent)
    if instrument is None:
        raise NoInstrument(respondent)
    return instrument


@transaction.atomic
def record_therapist_check(*, session: TherapySession, answers: dict, by, instrument=None) -> AllianceCheck:
    """The therapist's answers for a session, replacing earlier ones (the history keeps them).

    `tension` = `no` with nothing logged is also the session's "no rupture" mark.
    """
    current = (
        AllianceCheck.objects.select_for_update().therapist().filter(session=session).select_related("instrument")
        .first()
    )
    check = current or AllianceCheck(session=session, respondent=Respondent.THERAPIST)
    if instrument is not None or current is None:
        check.instrument = instrument or _instrument(Respondent.THERAPIST)
    check.set_answers(answers)
    check.submitted_at = timezone.now()
    check.save()
    if check.tension == "no" and session.no_rupture_noted_at is None and not session.ruptures.exists():
        session.no_rupture_noted_at = timezone.now()
        session.save(update_fields=["no_rupture_noted_at"])
    return check


def record_no_rupture(*, session: TherapySession, by) -> AllianceCheck | None:
    """"No rupture this session" is the therapist's `tension` = `no`, keeping any other answer.

    None when the clinic has no check loaded: the mark alone is kept.
    """
    current = AllianceCheck.objects.therapist().filter(session=session).select_related("instrument").first()
    answers = {}
    if current is not None:
        tension_item = current.instrument.item_for("tension")
        dropped = {item["slug"] for item in current.instrument.items if "asked_if" in item}
        answers = {k: v for k, v in current.answers.items() if k not in dropped}
        if tension_item:
            answers[tension_item["slug"]] = "no"
        return record_therapist_check(session=session, answers=answers, by=by, instrument=current.instrument)
    instrument = Instrument.objects.current(Respondent.THERAPIST)
    if instrument is None:
        return None
    tension_item = instrument.item_for("tension")
    if tension_item:
        answers[tension_item["slug"]] = "no"
    return record_therapist_check(session=session, answers=answers, by=by, instrument=instrument)


def may_ask_client(session: TherapySession, now=None) -> bool:
    """A session of today, or one held in the last CLIENT_CHECK_HOURS, with no client answer yet."""
    now = now or timezone.now()
    if session.status in (SessionStatus.CANCELLED, SessionStatus.NO_SHOW):
        return False
    today = timezone.localdate(now) == timezone.localdate(session.starts_at)
    recent = session.status == SessionStatus.HELD and session.starts_at >= now - timedelta(
        hours=settings.CLIENT_CHECK_HOURS
    )
    return (today or recent) and not AllianceCheck.objects.client().filter(session=session).exists()


def make_client_link(*, session: TherapySession, by, now=None) -> tuple[ClientCheckLink, str]:
    """A one-time link for the client: the token is returned once and only its hash stored."""
    now = now or timezone.now()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    link = ClientCheckLink.objects.create(
        session=session, token_hash=hash_token(token), created_by=by, created_at=now,
        expires_at=now + timedelta(hours=settings.CLIENT_CHECK_HOURS),
    )
    return link, token


def usable_link(token: str, now=None) -> ClientCheckLink | None:
    if not token or len(token) > 64:
        return None
    return ClientCheckLink.objects.usable(now).filter(token_hash=hash_token(token)).select_related("session").first()


def submit_client_check(*, token: str, answers: dict, declined: bool, now=None) -> AllianceCheck | None:
    """Store the client's answers (or that they declined) once; None if the link is no longer usable.

    The link is claimed with a conditional UPDATE: of two submissions at once, the second
    waits for the first's row lock, then finds the link used and stores nothing.
    """
    now = now or timezone.now()
    try:
        with transaction.atomic():
            claimed = ClientCheckLink.objects.usable(now).filter(token_hash=hash_token(token))
            link_id = claimed.values_list("pk", flat=True).first()
            if link_id is None or not ClientCheckLink.objects.filter(
                pk=link_id, used_at__isnull=True
            ).update(used_at=now):
                return None
            link = ClientCheckLink.objects.select_related("session").get(pk=link_id)
            check = AllianceCheck(
                session=link.session, respondent=Respondent.CLIENT, instrument=_instrument(Respondent.CLIENT),
                submitted_at=now, declined=declined,
            )
            check.set_answers({} if declined else answers)
            check.save()
            link.check_made = check
            link.save(update_fields=["check_made"])
            return check
    except IntegrityError:
        # Another link of the same session was answered first: one client check per session.
        return None
