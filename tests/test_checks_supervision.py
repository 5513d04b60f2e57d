"""The alliance checks on the supervision pages: completion, client reports, agreement, unlogged."""

import pytest

from supervision.measures import measure
from tests.conftest import login
from tests.factories import make_check, make_client, make_rupture, make_session
from tests.test_supervision import last_weeks


@pytest.fixture
def checked(therapist, shipped_instruments):
    """Six held sessions: both sides answered in four, the client declined one, one without any check."""
    client = make_client(therapist, code="C-0200")
    plan = [
        # therapist tension, client tension (None: not asked), client together
        ("yes", "yes", 4),
        ("no", "no", 5),
        ("no", "yes", 3),  # unlogged: client says yes, therapist no, no rupture
        ("yes", "no", 4),
        ("no", "declined", None),
        (None, None, None),
    ]
    sessions = []
    for n, (t, c, together) in enumerate(plan):
        session = make_session(client, days_ago=20 - n * 3)
        if t:
            make_check(session, "therapist", tension=t, together=4)
        if c == "declined":
            make_check(session, "client", declined=True)
        elif c:
            make_check(session, "client", tension=c, together=together)
        sessions.append(session)
    make_rupture(sessions[0])
    return sessions


def test_it_measures_the_checks_of_a_supervisee(therapist, checked):
    m = measure([(therapist.pk, None)], last_weeks(4), "", (("therapist_id",),))[("therapist_id",)][(therapist.pk,)]
    assert (m.held_sessions, m.therapist_checks, m.client_checks) == (6, 5, 4)
    assert (m.client_reported, m.client_reported_rate) == (2, 0.5)
    assert m.unlogged == 1
    agreement = m.agreement
    # yes/yes, no/no, no/yes, yes/no: half agree; expected .5, so kappa 0.
    assert (agreement.n, agreement.agreed, agreement.share, agreement.kappa) == (4, 2, 0.5, 0.0)


@pytest.mark.parametrize(("therapist_tension", "logged", "unlogged"), [
    ("no", False, True),
    (None, False, True),  # the therapist answered no check at all
    ("declined", False, True),
    # Not in the shipped instrument's therapist version, but a clinic's own may ask it:
    # anything but `yes` leaves the client's report unseen.
    ("rather_not_say", False, True),
    ("yes", False, False),
    ("no", True, False),
    (None, True, False),
    ("deleted rupture", False, True),
])
def test_the_dashboard_and_the_unlogged_list_apply_one_rule(therapist, client_record, shipped_instruments,
                                                             therapist_tension, logged, unlogged):
    from checks.models import AllianceCheck

    session = make_session(client_record, days_ago=3)
    make_check(session, "client", tension="yes", together=3)
    if therapist_tension == "declined":
        make_check(session, "therapist", declined=True)
    elif therapist_tension == "rather_not_say":
        check = make_check(session, "therapist", tension="no", together=4)
        AllianceCheck.objects.filter(pk=check.pk).update(tension="rather_not_say")
    elif therapist_tension in ("no", "yes"):
        make_check(session, "therapist", tension=therapist_tension, together=4)
    if logged:
        make_rupture(session)
    if therapist_tension == "deleted rupture":
        make_rupture(session).soft_delete(by=therapist, reason="Logged for the wrong client.")
    m = measure([(therapist.pk, None)], last_weeks(4), "", ((),))[()][()]
    assert m.unlogged == AllianceCheck.objects.unlogged().count() == int(unlogged)


def test_a_soft_deleted_check_leaves_the_figures(therapist, checked):
    from checks.models import AllianceCheck

    AllianceCheck.objects.get(session=checked[2], respondent="client").soft_delete(by=therapist, reason="x")
    m = measure([(therapist.pk, None)], last_weeks(4), "", ((),))[()][()]
    assert (m.client_checks, m.unlogged, m.agreement.n) == (3, 0, 3)


def test_the_supervisor_sees_the_figures_and_the_unlogged_list(as_supervisor, therapist, checked):
    page = as_supervisor.get("/supervision/").content.decode()
    assert "Therapist checks" in page and "Agreement on tension" in page
    assert "83&nbsp;% <span class=\"muted small\">(5/6)</span>" in page
    assert "κ&nbsp;0.00" in page and "(n&nbsp;=&nbsp;4)" in page
    caseload = as_supervisor.get(f"/supervision/{therapist.username}/").content.decode()
    assert "Client-reported, not logged" in caseload
    assert f"/sessions/{checked[2].pk}/#check-h" in caseload


def test_admins_see_counts_only(client, admin_user, supervisor, checked):
    login(client, admin_user)
    page = client.get("/supervision/").content.decode()
    assert "Unlogged client reports" in page and "(5/6)" in page
    assert "C-0200" not in page and "#check-h" not in page
    assert client.get(f"/supervision/{checked[0].therapist.username}/").status_code == 404
