"""What the session page shows of the alliance checks: both sides, and what the therapist can do."""

from django.utils import timezone

from checks import services
from checks.forms import CheckForm
from checks.models import AllianceCheck, ClientCheckLink, Instrument, Respondent

ROWS = (
    ("tension", "Tension, distance or misunderstanding"),
    ("intensity", "How strong (1-5)"),
    ("worked_through", "Worked through by the end (1-5)"),
    ("together", "Worked well together (1-5)"),
)


def answer_label(check, meaning):
    """One side's answer to a meaning, in the words of that side's instrument."""
    if check is None:
        return "not asked"
    if check.declined:
        return "declined"
    item = check.instrument.item_for(meaning)
    value = check.answers.get(item["slug"]) if item else None
    if value is None:
        return "—"
    if item["type"] == "choice":
        return next((c["label"] for c in item["choices"] if c["slug"] == value), value)
    anchor = item.get("anchors", {}).get(str(value))
    return f"{value} ({anchor})" if anchor else str(value)


def side_by_side(therapist_check, client_check):
    return [
        {"label": label, "therapist": answer_label(therapist_check, meaning),
         "client": answer_label(client_check, meaning)}
        for meaning, label in ROWS
    ]


def session_checks(session, user, *, form=None, editable=False, ruptures_logged=False):
    checks = {c.respondent: c for c in AllianceCheck.objects.filter(session=session).select_related("instrument")}
    therapist_check, client_check = checks.get(Respondent.THERAPIST), checks.get(Respondent.CLIENT)
    context = {
        "therapist_check": therapist_check,
        "client_check": client_check,
        "check_rows": side_by_side(therapist_check, client_check),
        "client_words": client_check.free_text() if client_check and not client_check.declined else [],
    }
    if not editable:
        return context
    instrument = therapist_check.instrument if therapist_check else Instrument.objects.current(Respondent.THERAPIST)
    if form is None and instrument is not None and session.status == "held":
        initial = {k: str(v) for k, v in therapist_check.answers.items()} if therapist_check else {}
        form = CheckForm(instrument=instrument, initial=initial)
    context.update(
        check_form=form if session.status == "held" else None,
        may_ask_client=services.may_ask_client(session),
        waiting_link=ClientCheckLink.objects.usable().filter(session=session).order_by("-created_at").first(),
        offer_rupture=bool(therapist_check and therapist_check.tension == "yes" and not ruptures_logged
                           and session.is_loggable),
        now=timezone.now(),
    )
    return context
