"""Alliance checks for the demo clinic (sessions.demo), with the numbers of domain.md §9.

Therapists answer nearly always; clients in about 60 % of sessions, reporting fewer
ruptures than their therapists, and now and then one the therapist did not log.
"""

from datetime import timedelta

from checks.models import AllianceCheck, Instrument, Respondent

CLIENT_WORDS = [
    "I felt a bit rushed at the end.",
    "It helped to talk about the letter.",
    "I wasn't sure you understood what I meant about my mother.",
    "Good session, thank you.",
    "The homework felt like too much this week.",
]


def current_forms():
    """The therapist's and the client's current instruments, or None without both."""
    therapist_form = Instrument.objects.current(Respondent.THERAPIST)
    client_form = Instrument.objects.current(Respondent.CLIENT)
    return (therapist_form, client_form) if therapist_form and client_form else None


def check_rows(sessions, ruptures, rng, now, forms) -> list:
    """The checks of `sessions` (anything with pk, client_id, status and starts_at), unsaved:
    sessions.demo draws them client by client, from each client's own seed."""
    if forms is None:
        return []
    therapist_form, client_form = forms
    logged = {}
    for r in ruptures:
        logged[r.session_id] = max(logged.get(r.session_id, 0), r.intensity)
    usual = {}
    checks = []
    for s in sessions:
        if s.status != "held":
            continue
        recent = s.starts_at > now - timedelta(days=5)
        intensity = logged.get(s.pk)
        # A recent session nobody logged yet: its therapist has not answered either.
        if rng.random() < 0.95 and not (recent and intensity is None):
            checks.append(_check(s, therapist_form, _therapist_answers(intensity, rng), now))
        if rng.random() < 0.6:
            if rng.random() < 0.05:
                checks.append(_check(s, client_form, {}, now, declined=True))
                continue
            baseline = usual.setdefault(s.client_id, rng.choice([4, 4, 5, 5, 3]))
            checks.append(_check(s, client_form, _client_answers(intensity, baseline, rng), now))
    return checks


def _check(session, instrument, answers, now, declined=False):
    check = AllianceCheck(session_id=session.pk, respondent=instrument.respondent, instrument=instrument,
                          submitted_at=min(session.starts_at + timedelta(minutes=55), now), declined=declined)
    check.set_answers(answers)
    return check


def _therapist_answers(intensity, rng):
    together = rng.choice([3, 4, 4, 5])
    if intensity is None:
        return {"tension": "no", "together": together}
    return {"tension": "yes", "intensity": intensity, "worked_through": rng.randint(2, 5),
            "together": max(1, together - (intensity >= 4))}


def _client_answers(intensity, baseline, rng):
    # Clients see fewer ruptures than their therapists, and some the therapist missed.
    felt = rng.random() < (0.4 if intensity else 0.1)
    if rng.random() < 0.05:
        answers = {"tension": "rather_not_say", "together": baseline}
    elif felt:
        answers = {"tension": "yes", "intensity": rng.choice([1, 2, 2, 3, 3, 4, 5]),
                   "worked_through": rng.choice([1, 2, 3, 4, 4, 5]),
                   "together": max(1, baseline - rng.choice([0, 1, 1, 2, 3]))}
    else:
        answers = {"tension": "no", "together": baseline if rng.random() < 0.8 else max(1, baseline - 1)}
    if rng.random() < 0.15:
        answers["say_more"] = rng.choice(CLIENT_WORDS)
    return answers
