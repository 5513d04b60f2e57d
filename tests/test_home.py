from datetime import date, timedelta

import pytest
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from accounts.models import Role
from sessions.models import ClientStatus, SessionStatus
from tests.conftest import login
from tests.factories import make_client, make_rupture, make_session, make_user, supervise
from tests.helpers import assert_reads_no_name_nor_password_hash


def in_days(days):
    return timezone.now() + timedelta(days=days)


def section(response, heading_id, next_heading_id=None):
    """The HTML from one section heading to the next, to say where something is shown."""
    html = response.content.decode()
    start = html.index(f'id="{heading_id}"')
    end = html.index(f'id="{next_heading_id}"') if next_heading_id else len(html)
    return html[start:end]


# --- therapist ----------------------------------------------------------------------

def test_it_shows_todays_and_the_coming_weeks_sessions(
    as_therapist, client_record, other_therapist
):
    later_today = make_session(client_record, status=SessionStatus.SCHEDULED,
                               starts_at=timezone.now() + timedelta(minutes=30))
    in_three_days = make_session(client_record, days_ago=-3, status=SessionStatus.SCHEDULED)
    make_session(client_record, days_ago=-10, status=SessionStatus.SCHEDULED)
    make_session(client_record, days_ago=-2, status=SessionStatus.CANCELLED)
    make_session(client_record, days_ago=2)
    make_session(make_client(other_therapist), days_ago=-1, status=SessionStatus.SCHEDULED)

    response = as_therapist.get("/")

    assert response.status_code == 200
    assert list(response.context["agenda"]) == [later_today, in_three_days]
    agenda = section(response, "agenda-h", "open-h")
    assert f'href="/sessions/{later_today.pk}/"' in agenda
    assert f'href="/sessions/{in_three_days.pk}/"' in agenda


def test_it_flags_open_ruptures_on_the_agenda(as_therapist, rupture):
    make_session(rupture.session.client, days_ago=-1, status=SessionStatus.SCHEDULED)
    make_rupture(rupture.session, repair_status="resolved")

    response = as_therapist.get("/")

    assert [s.open_ruptures for s in response.context["agenda"]] == [1]
    assertContains(response, "1 open rupture<")


def test_it_lists_sessions_held_this_week_with_nothing_logged(
    as_therapist, client_record, other_therapist
):
    waiting = make_session(client_record, days_ago=2)
    almost_a_week = make_session(client_record, days_ago=6.9)
    make_rupture(make_session(client_record, days_ago=3))
    make_session(client_record, days_ago=4, no_rupture_noted_at=timezone.now())
    make_session(client_record, days_ago=8)
    make_session(client_record, days_ago=1, status=SessionStatus.CANCELLED)
    make_session(client_record, days_ago=1, status=SessionStatus.NO_SHOW)
    make_session(make_client(other_therapist), days_ago=1)

    response = as_therapist.get("/")

    # The session just held first: the one to log before the next client.
    assert list(response.context["awaiting_log"]) == [waiting, almost_a_week]
    awaiting = section(response, "await-h")
    for s in (almost_a_week, waiting):
        assert f'action="/sessions/{s.pk}/no-rupture"' in awaiting
        assert f'href="/sessions/{s.pk}/ruptures/new"' in awaiting
    assert 'name="next" value="/"' in awaiting


def test_it_lists_open_ruptures_by_the_next_session_then_intensity(as_therapist, therapist, other_therapist):
    soon, later, unbooked = (make_client(therapist) for _ in range(3))
    for client, days in ((soon, 1), (later, 4)):
        make_session(client, days_ago=-days, status=SessionStatus.SCHEDULED)
    unbooked_strong = make_rupture(make_session(unbooked, days_ago=2), intensity=5)
    later_mild = make_rupture(make_session(later, days_ago=10), repair_status="unresolved", intensity=2)
    soon_mild = make_rupture(make_session(soon, days_ago=3), intensity=2, plan="Name the pull to agree.")
    soon_strong = make_rupture(make_session(soon, days_ago=5), repair_status="attempted", intensity=4)
    resolved = make_rupture(make_session(soon, days_ago=6), repair_status="resolved")
    partly = make_rupture(make_session(soon, days_ago=1), repair_status="partially_resolved")
    theirs = make_rupture(make_session(make_client(other_therapist), days_ago=20))

    response = as_therapist.get("/")

    expected = [soon_strong, soon_mild, later_mild, unbooked_strong]
    assert list(response.context["open_ruptures"]) == expected
    open_html = section(response, "open-h")
    positions = [open_html.index(f'href="/ruptures/{r.pk}/"') for r in expected]
    assert positions == sorted(positions)
    for r in (resolved, partly, theirs):
        assert f'href="/ruptures/{r.pk}/"' not in open_html
    assert "Name the pull to agree." in open_html


def test_it_puts_the_session_just_held_first_and_folds_long_lists(as_therapist, therapist):
    for _ in range(8):
        client = make_client(therapist)
        make_session(client, days_ago=-2, status=SessionStatus.SCHEDULED)
        make_rupture(make_session(client, days_ago=9))
    just_held = make_session(make_client(therapist), days_ago=0.05)

    html = as_therapist.get("/").content.decode()

    # The after-session actions come before any flag, session list or open rupture.
    main = html[html.index('id="main"'):]
    first_link = main[main.index("<a ") : main.index("</a>")]
    assert f'href="/sessions/{just_held.pk}/"' in first_link
    assert main.index(f'href="/sessions/{just_held.pk}/ruptures/new"') < main.index('id="agenda-h"')
    assert main.index('id="agenda-h"') < main.index('id="open-h"')
    # Eight sessions coming: the first five shown, a link to the other three.
    agenda = main[main.index('id="agenda-h"'):main.index('id="open-h"')]
    assert agenda.count('<span class="code">') == 5
    assert 'href="?all=agenda#agenda-h"' in agenda and "Show 3 later sessions" in agenda
    # Eight open ruptures: all shown (ten fit before the fold), their count in view.
    assert 'Open ruptures <span class="count">8</span>' in main
    assert "?all=open" not in main


def test_a_long_list_on_home_unfolds_with_a_plain_link(as_therapist, therapist):
    for _ in range(12):
        make_rupture(make_session(make_client(therapist), days_ago=9))

    folded = section(as_therapist.get("/"), "open-h")
    assert folded.count('href="/ruptures/') == 10
    assert 'href="?all=open#open-h"' in folded and "Show 2 more open ruptures" in folded

    # Without JavaScript the link loads the page with that list whole; htmx swaps the
    # same box (its hx-select) in place.
    unfolded = section(as_therapist.get("/?all=open"), "open-h")
    assert unfolded.count('href="/ruptures/') == 12 and "?all=open" not in unfolded
    assert 'id="open-fold"' in unfolded


def test_the_stalled_list_and_the_supervisors_notes_fold_too(as_therapist, therapist, supervisor):
    from reminders.models import Flag
    from supervision.models import SupervisionNote

    for n in range(7):
        rupture = make_rupture(make_session(make_client(therapist), days_ago=20 + n))
        Flag.objects.create(reason="stalled", rupture=rupture, escalated=False, carried_over=False)
        SupervisionNote.objects.create(rupture=rupture, supervisor=supervisor, comment=f"Note number {n}.",
                                       created_at=timezone.now() - timedelta(hours=n))

    response = as_therapist.get("/")
    stalled = section(response, "stalled-h", "open-h")
    assert stalled.count('href="/ruptures/') == 5
    assert 'href="?all=stalled#stalled-h"' in stalled and "Show 2 more stalled ruptures" in stalled
    assert 'Stalled: no next session <span class="count">7</span>' in stalled
    notes = section(response, "notes-h", "stalled-h")
    # The newest five notes shown; the count says seven.
    assert [f"Note number {n}." in notes for n in range(7)] == [True] * 5 + [False] * 2
    assert 'href="?all=notes#notes-h"' in notes and "Show 2 earlier notes" in notes

    # Each unfolds alone, without JavaScript; htmx swaps the same box (its hx-select).
    unfolded = as_therapist.get("/?all=stalled")
    stalled = section(unfolded, "stalled-h", "open-h")
    assert stalled.count('href="/ruptures/') == 7 and "?all=stalled" not in stalled
    assert 'id="stalled-fold"' in stalled
    assert "Show 2 earlier notes" in section(unfolded, "notes-h", "stalled-h")
    notes = section(as_therapist.get("/?all=notes"), "notes-h", "stalled-h")
    assert all(f"Note number {n}." in notes for n in range(7)) and "?all=notes" not in notes
    assert 'id="notes-fold"' in notes


def test_the_flag_count_says_how_many_are_under_folded_sessions(as_therapist, therapist):
    from reminders.models import Flag

    def flagged(session, escalated=False):
        rupture = make_rupture(make_session(session.client, days_ago=3))
        Flag.objects.create(rupture=rupture, session=session, escalated=escalated, carried_over=False)

    coming = [make_session(make_client(therapist), status=SessionStatus.SCHEDULED, starts_at=in_days(1 + n / 10))
              for n in range(8)]
    flagged(coming[0])
    # Every flag in view: the line says nothing of the fold.
    agenda = section(as_therapist.get("/"), "agenda-h", "open-h")
    assert "Show 3 later sessions" in agenda and "folded below" not in agenda

    flagged(coming[6])
    flagged(coming[7], escalated=True)
    agenda = section(as_therapist.get("/"), "agenda-h", "open-h")
    assert ('<span class="count">3</span> open ruptures flagged before these sessions, each listed under its '
            "session;\n    <strong>2 of them under the 3 later sessions folded below (1 escalated)</strong>.") in agenda
    assert "Show 3 later sessions" in agenda
    # Unfolded (the page, or the box htmx swaps in): all in view, nothing said to be below.
    agenda = section(as_therapist.get("/?all=agenda"), "agenda-h", "open-h")
    assert agenda.index('id="agenda-fold"') < agenda.index('id="flags-h"')
    assert "open ruptures flagged before these sessions, each listed under its session.</p>" in agenda
    assert "folded below" not in agenda and agenda.count("Flagged before this session") == 3


def test_it_shows_the_flags_under_the_session_they_are_raised_for(as_therapist, rupture):
    from reminders.models import Flag

    upcoming = make_session(rupture.session.client, days_ago=-1, status=SessionStatus.SCHEDULED)
    Flag.objects.create(rupture=rupture, session=upcoming, escalated=True, carried_over=False)

    response = as_therapist.get("/")

    agenda = section(response, "agenda-h", "open-h")
    assert f'href="/ruptures/{rupture.pk}/"' in agenda
    assert "escalated: high intensity" in agenda
    assert f'href="/sessions/{upcoming.pk}/brief"' in agenda


def test_it_shows_the_next_booked_session_beside_an_open_rupture(as_therapist, rupture):
    make_session(rupture.session.client, days_ago=-20, status=SessionStatus.SCHEDULED)
    soonest = make_session(rupture.session.client, days_ago=-9, status=SessionStatus.SCHEDULED)
    make_session(rupture.session.client, days_ago=-5, status=SessionStatus.CANCELLED)

    response = as_therapist.get("/")

    assert response.context["open_ruptures"].rows[0].next_session_at == soonest.starts_at
    assertNotContains(response, "none booked")


def test_it_says_when_no_session_is_booked_after_an_open_rupture(as_therapist, rupture):
    response = as_therapist.get("/")

    assert response.context["open_ruptures"].rows[0].next_session_at is None
    assertContains(response, "none booked")


def test_it_tells_the_therapist_what_their_supervisor_noted(as_therapist, rupture, supervisor, other_therapist):
    from supervision.models import SupervisionNote

    SupervisionNote.objects.create(rupture=rupture, supervisor=supervisor, comment="Name the pull to please.")
    SupervisionNote.objects.create(rupture=rupture, supervisor=supervisor, comment="Long ago.",
                                   created_at=timezone.now() - timedelta(days=15))
    theirs = make_rupture(make_session(make_client(other_therapist)))
    SupervisionNote.objects.create(rupture=theirs, supervisor=supervisor, comment="Not for Dana.")

    response = as_therapist.get("/")

    notes = section(response, "notes-h", "open-h")
    assert "Name the pull to please." in notes and "M. Okafor" in notes
    assert f'href="/ruptures/{rupture.pk}/"' in notes
    assert "Long ago." not in notes and "Not for Dana." not in response.content.decode()


def test_it_shows_a_quiet_home_page_to_a_new_therapist(as_therapist):
    response = as_therapist.get("/")

    assertContains(response, "No open ruptures.")
    assertContains(response, "No sessions booked for the coming days.")
    assertContains(response, "Every session held this week is logged.")


def busy_caseload(therapist, n):
    """n clients, each with a session booked, one awaiting a log and an open rupture."""
    for _ in range(n):
        client = make_client(therapist)
        make_session(client, status=SessionStatus.SCHEDULED, starts_at=in_days(2))
        make_session(client, days_ago=1)
        make_rupture(make_session(client, days_ago=10), repair_status="attempted")


def test_it_builds_the_therapist_home_in_a_constant_number_of_queries(
    as_therapist, therapist, django_assert_max_num_queries
):
    busy_caseload(therapist, 5)
    with django_assert_max_num_queries(11) as few:
        response = as_therapist.get("/")
    assert response.context["open_ruptures"].total == 5

    busy_caseload(therapist, 50)
    with django_assert_max_num_queries(11) as many:
        response = as_therapist.get("/")

    for rows in ("agenda", "awaiting_log", "open_ruptures"):
        assert response.context[rows].total == 55
        # Only the rows in view are fetched: the rest are counted, never built.
        assert len(response.context[rows].rows) < 55
    assert len(many.captured_queries) == len(few.captured_queries)


def flagged_caseload(therapist, n):
    """n clients with a session booked and, under it, a rupture's flag and a client check's."""
    from reminders.models import Flag
    from tests.factories import make_check

    for _ in range(n):
        client = make_client(therapist)
        upcoming = make_session(client, status=SessionStatus.SCHEDULED, starts_at=in_days(2))
        rupture = make_rupture(make_session(client, days_ago=10), repair_status="attempted")
        check = make_check(make_session(client, days_ago=3), "client", tension="yes", intensity=4,
                           worked_through=2, together=3)
        Flag.objects.create(rupture=rupture, session=upcoming, escalated=False, carried_over=False)
        Flag.objects.create(reason="unlogged", alliance_check=check, session=upcoming, escalated=True,
                            carried_over=False)


def test_the_flags_under_the_agenda_cost_no_query_each(as_therapist, therapist, django_assert_max_num_queries):
    # The home page loads only the columns it shows: one it did not load would cost a
    # query per row when the template reads it.
    flagged_caseload(therapist, 2)
    with django_assert_max_num_queries(11) as few:
        response = as_therapist.get("/?all=agenda")
    flagged_caseload(therapist, 8)
    with django_assert_max_num_queries(11) as many:
        response = as_therapist.get("/?all=agenda")

    assert len(many.captured_queries) == len(few.captured_queries)
    agenda = section(response, "agenda-h", "open-h")
    assert agenda.count("client's intensity 4") == 10 and agenda.count("intensity 3") >= 1
    assert agenda.count("escalated: client&#x27;s intensity 4-5") == 10


# --- supervisor ---------------------------------------------------------------------

def supervisees_of(response):
    return {
        t.username: (t.active_clients, t.open_ruptures) for t in response.context["supervisees"]
    }


def test_it_lists_a_supervisors_supervisees_with_their_counts(
    as_supervisor, supervisor, therapist, other_therapist, other_supervisor
):
    first = make_client(therapist, code="C-0001")
    second = make_client(therapist, code="C-0002")
    gone = make_client(therapist, code="C-0003", status=ClientStatus.DISCHARGED)
    make_rupture(make_session(first, days_ago=3), repair_status="unaddressed")
    make_rupture(make_session(first, days_ago=2), repair_status="unresolved")
    make_rupture(make_session(second, days_ago=2), repair_status="attempted")
    make_rupture(make_session(second, days_ago=1), repair_status="resolved")
    make_rupture(make_session(gone, days_ago=1), repair_status="partially_resolved")
    newcomer = make_user(Role.THERAPIST, username="newcomer", display_name="New Comer")
    supervise(supervisor, newcomer)
    make_rupture(make_session(make_client(other_therapist), days_ago=1))

    response = as_supervisor.get("/")

    assert response.status_code == 200
    assert supervisees_of(response) == {"dlee": (2, 3), "newcomer": (0, 0)}
    # Each name leads to that supervisee's caseload.
    assertContains(response, '<a href="/supervision/dlee/">Dana Lee</a>', html=True)
    assertContains(response, "New Comer")
    assertNotContains(response, "Asha Patel")


def test_it_leaves_out_a_supervisee_whose_supervision_ended(as_supervisor, supervisor, therapist):
    supervisor.supervisee_links.update(starts_on=date(2020, 1, 1), ends_on=date(2020, 12, 31))

    response = as_supervisor.get("/")

    assert supervisees_of(response) == {}
    assertContains(response, "No therapists are assigned to you")


def test_it_builds_the_supervisor_home_in_a_constant_number_of_queries(
    as_supervisor, supervisor, django_assert_max_num_queries
):
    # Each supervisee with a risk concern too: the risks and the supervisees are read
    # with only the columns they print (case codes, the therapists' names), and a column
    # left out that the template reads would cost a query a row.
    def add_supervisees(n):
        for _ in range(n):
            therapist = make_user(Role.THERAPIST)
            supervise(supervisor, therapist)
            busy_caseload(therapist, 2)
            client = make_client(therapist, name="Jane Roe")
            make_rupture(make_session(client, days_ago=1), risk="self_harm", risk_recorded_at=timezone.now())

    add_supervisees(2)
    with django_assert_max_num_queries(10) as few:
        as_supervisor.get("/")

    add_supervisees(48)
    with django_assert_max_num_queries(10) as many:
        response = as_supervisor.get("/")

    assert len(response.context["supervisees"]) == 51
    assert len(response.context["risks"]) == 50
    assert len(many.captured_queries) == len(few.captured_queries)
    assert_reads_no_name_nor_password_hash(many.captured_queries)


# --- admin -------------------------------------------------------------------------

def test_it_shows_an_admin_counts_but_no_clinical_records(as_admin, therapist, other_supervisor):
    client = make_client(therapist, code="C-0042", name="Jane Roe")
    make_client(therapist, code="C-0043", status=ClientStatus.PAUSED)
    make_rupture(
        make_session(client, days_ago=1, note="Spoke about her mother."),
        noticed="Looked away when fees came up.", plan="Ask about the fee talk.",
    )

    response = as_admin.get("/")

    assert response.status_code == 200
    assert response.context["people"] == [("Therapist", 2), ("Supervisor", 1), ("Clinic admin", 1)]
    assert response.context["clients"] == 1
    for clinical in ("C-0042", "C-0043", "Jane Roe", "mother", "fees", "fee talk", "/clients/"):
        assertNotContains(response, clinical)
    assertContains(response, 'href="/admin/"')


def test_it_leaves_inactive_people_out_of_the_admin_counts(as_admin):
    make_user(Role.THERAPIST, is_active=False)

    response = as_admin.get("/")

    assert dict(response.context["people"])["Therapist"] == 0


# --- everyone ------------------------------------------------------------------------

def test_it_sends_anonymous_visitors_home_to_sign_in(client):
    assertRedirects(client.get("/"), "/accounts/login/?next=/", fetch_redirect_response=False)


@pytest.mark.parametrize("persona", ["therapist", "supervisor", "admin_user"])
def test_it_refuses_to_post_home(db, request, client, persona):
    login(client, request.getfixturevalue(persona))

    assert client.post("/").status_code == 405
