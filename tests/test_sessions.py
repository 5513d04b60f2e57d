from datetime import timedelta

import pytest
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from sessions.models import SessionStatus, TherapySession
from tests.factories import make_session
from tests.helpers import assert_error_beside, sign_in

PERSONAS_WHO_MAY_NOT_READ = ["other_therapist", "other_supervisor", "admin_user"]




def local_input(when):
    """A datetime as a browser's datetime-local input sends it."""
    return timezone.localtime(when).strftime("%Y-%m-%dT%H:%M")


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def upcoming_session(client_record):
    return make_session(client_record, days_ago=-2, status=SessionStatus.SCHEDULED)


@pytest.fixture
def past_scheduled_session(client_record):
    """Booked, took place yesterday, status not yet updated."""
    return make_session(client_record, days_ago=1, status=SessionStatus.SCHEDULED)


# --- /clients/<code>/sessions/new ---------------------------------------------------------

def session_data(**overrides):
    data = {
        "starts_at": local_input(timezone.now() + timedelta(days=2)),
        "duration_minutes": "50",
        "status": "scheduled",
        "note": "",
    }
    return {**data, **overrides}


def test_it_schedules_a_session_in_the_future(as_therapist, therapist, client_record):
    starts_at = (timezone.now() + timedelta(days=2)).replace(second=0, microsecond=0)

    response = as_therapist.post(
        "/clients/C-0001/sessions/new",
        session_data(starts_at=local_input(starts_at), duration_minutes="90", note="Room 2"),
    )

    session = TherapySession.objects.get()
    assertRedirects(response, f"/sessions/{session.pk}/")
    assert session.client == client_record
    assert session.therapist == therapist
    assert session.status == SessionStatus.SCHEDULED
    assert session.starts_at == starts_at
    assert session.duration_minutes == 90
    assert session.note == "Room 2"


def test_it_records_a_session_already_held(as_therapist, client_record):
    starts_at = (timezone.now() - timedelta(days=2)).replace(second=0, microsecond=0)

    response = as_therapist.post(
        "/clients/C-0001/sessions/new",
        session_data(starts_at=local_input(starts_at), status="held"),
    )

    session = TherapySession.objects.get()
    assertRedirects(response, f"/sessions/{session.pk}/")
    assert session.status == SessionStatus.HELD
    assert session.starts_at == starts_at


def test_it_shows_the_new_session_form(as_therapist, client_record):
    response = as_therapist.get("/clients/C-0001/sessions/new")

    assert response.status_code == 200
    assertContains(response, 'type="datetime-local"')


def test_it_refuses_a_held_session_in_the_future(as_therapist, client_record):
    response = as_therapist.post("/clients/C-0001/sessions/new", session_data(status="held"))

    assert response.status_code == 200
    assert_error_beside(response, "starts_at", "A held session cannot start in the future.")
    assert not TherapySession.objects.exists()


def test_it_refuses_a_scheduled_session_in_the_past(as_therapist, client_record):
    past = local_input(timezone.now() - timedelta(days=1))

    response = as_therapist.post("/clients/C-0001/sessions/new", session_data(starts_at=past))

    assert_error_beside(response, "starts_at", "A scheduled session must start in the future")
    assert not TherapySession.objects.exists()


@pytest.mark.parametrize(
    "minutes", ["4", "481", "0", "-50", "50.5", "fifty", "", "99999999999999999999"]
)
def test_it_refuses_a_length_outside_5_to_480_minutes(as_therapist, client_record, minutes):
    response = as_therapist.post(
        "/clients/C-0001/sessions/new", session_data(duration_minutes=minutes)
    )

    assert response.status_code == 200
    assert response.context["form"].errors["duration_minutes"]
    assertContains(response, 'id="id_duration_minutes_error"')
    assert not TherapySession.objects.exists()


@pytest.mark.parametrize("minutes", ["5", "480"])
def test_it_accepts_the_shortest_and_longest_session(as_therapist, client_record, minutes):
    as_therapist.post("/clients/C-0001/sessions/new", session_data(duration_minutes=minutes))

    assert TherapySession.objects.get().duration_minutes == int(minutes)


@pytest.mark.parametrize(
    "starts_at",
    ["next tuesday", "2025-13-45T10:00", "2025-02-30T10:00", "", "99999-01-01T00:00", "\x00"],
)
def test_it_refuses_a_garbage_start_time(as_therapist, client_record, starts_at):
    response = as_therapist.post(
        "/clients/C-0001/sessions/new", session_data(starts_at=starts_at)
    )

    assert response.status_code == 200
    assert response.context["form"].errors["starts_at"]
    assertContains(response, 'id="id_starts_at_error"')
    assert not TherapySession.objects.exists()


@pytest.mark.parametrize("time_zone", ["UTC", "Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize(
    "starts_at, status", [("0001-01-01T00:00", "held"), ("9999-12-31T23:59", "scheduled")]
)
def test_it_refuses_a_start_time_years_away(
    as_therapist, client_record, settings, time_zone, starts_at, status
):
    settings.TIME_ZONE = time_zone

    response = as_therapist.post(
        "/clients/C-0001/sessions/new", session_data(starts_at=starts_at, status=status)
    )

    assert response.status_code == 200
    assert_error_beside(response, "starts_at", "Check the year")
    assert not TherapySession.objects.exists()


@pytest.mark.parametrize("status", ["cancelled", "no_show", "held; drop", ""])
def test_it_offers_only_scheduled_or_held_for_a_new_session(as_therapist, client_record, status):
    response = as_therapist.post("/clients/C-0001/sessions/new", session_data(status=status))

    assert response.status_code == 200
    assertContains(response, 'id="id_status_error"')
    assert not TherapySession.objects.exists()


@pytest.mark.parametrize("persona", ["supervisor", *PERSONAS_WHO_MAY_NOT_READ])
def test_it_lets_no_one_else_add_a_session(request, client, client_record, persona):
    sign_in(request, client, persona)

    assert client.get("/clients/C-0001/sessions/new").status_code == 404
    assert client.post("/clients/C-0001/sessions/new", session_data()).status_code == 404
    assert not TherapySession.objects.exists()


def test_it_answers_404_for_a_session_of_an_unknown_client(as_therapist, client_record):
    assert as_therapist.post("/clients/C-9999/sessions/new", session_data()).status_code == 404


# --- /sessions/<id>/ ------------------------------------------------------------------

def test_it_shows_a_session_with_its_ruptures(as_therapist, rupture):
    session = rupture.session

    response = as_therapist.get(f"/sessions/{session.pk}/")

    assert response.status_code == 200
    assert list(response.context["ruptures"]) == [rupture]
    assertContains(response, f'href="/ruptures/{rupture.pk}/"')
    assertContains(response, f'action="/sessions/{session.pk}/status"')
    assertContains(response, f'href="/sessions/{session.pk}/ruptures/new"')
    # A rupture is logged, so "no rupture this session" is not offered.
    assertNotContains(response, f'action="/sessions/{session.pk}/no-rupture"')


def test_it_offers_no_rupture_for_a_held_session_with_nothing_logged(as_therapist, held_session):
    response = as_therapist.get(f"/sessions/{held_session.pk}/")

    assertContains(response, f'action="/sessions/{held_session.pk}/no-rupture"')
    assertContains(response, "None logged.")


def test_it_offers_no_logging_for_a_future_session(as_therapist, upcoming_session):
    response = as_therapist.get(f"/sessions/{upcoming_session.pk}/")

    assertNotContains(response, "/ruptures/new")
    assertNotContains(response, "/no-rupture")


def test_it_shows_a_supervisor_the_session_read_only(as_supervisor, rupture):
    response = as_supervisor.get(f"/sessions/{rupture.session.pk}/")

    assert response.status_code == 200
    assertContains(response, f'href="/ruptures/{rupture.pk}/"')
    assertNotContains(response, "/status")
    assertNotContains(response, "/ruptures/new")
    assertNotContains(response, "/no-rupture")


@pytest.mark.parametrize("persona", PERSONAS_WHO_MAY_NOT_READ)
def test_it_hides_a_session_from_everyone_else(request, client, held_session, persona):
    sign_in(request, client, persona)

    assert client.get(f"/sessions/{held_session.pk}/").status_code == 404


def test_it_sends_anonymous_visitors_from_a_session_to_sign_in(client, held_session):
    url = f"/sessions/{held_session.pk}/"

    assertRedirects(client.get(url), f"/accounts/login/?next={url}", fetch_redirect_response=False)


@pytest.mark.parametrize("pk", ["999999", "99999999999999999999"])
def test_it_answers_an_unknown_session_with_404(as_therapist, held_session, pk):
    assert as_therapist.get(f"/sessions/{pk}/").status_code == 404


# --- /sessions/<id>/status ---------------------------------------------------------------

@pytest.mark.parametrize("status", ["held", "no_show", "cancelled"])
def test_it_marks_a_past_session(as_therapist, past_scheduled_session, status):
    session = past_scheduled_session

    response = as_therapist.post(f"/sessions/{session.pk}/status", {"status": status})

    assertRedirects(response, f"/sessions/{session.pk}/")
    session.refresh_from_db()
    assert session.status == status


def test_it_cancels_a_future_session(as_therapist, upcoming_session):
    response = as_therapist.post(f"/sessions/{upcoming_session.pk}/status", {"status": "cancelled"})

    assertRedirects(response, f"/sessions/{upcoming_session.pk}/")
    upcoming_session.refresh_from_db()
    assert upcoming_session.status == SessionStatus.CANCELLED


def test_it_says_what_changed(as_therapist, past_scheduled_session):
    url = f"/sessions/{past_scheduled_session.pk}/status"

    response = as_therapist.post(url, {"status": "no_show"}, follow=True)

    assert "Session marked no-show." in messages_of(response)


@pytest.mark.parametrize("status", ["held", "no_show"])
def test_it_refuses_to_mark_a_future_session_as_taken_place(as_therapist, upcoming_session, status):
    response = as_therapist.post(f"/sessions/{upcoming_session.pk}/status", {"status": status})

    assert response.status_code == 400
    assert_error_beside(response, "status", "This session has not started yet.", form="status_form")
    upcoming_session.refresh_from_db()
    assert upcoming_session.status == SessionStatus.SCHEDULED


def test_it_refuses_to_put_a_past_session_back_to_scheduled(as_therapist, held_session):
    response = as_therapist.post(f"/sessions/{held_session.pk}/status", {"status": "scheduled"})

    assert response.status_code == 400
    assert_error_beside(response, "status", "cannot go back to scheduled", form="status_form")
    held_session.refresh_from_db()
    assert held_session.status == SessionStatus.HELD


@pytest.mark.parametrize("status", ["cancelled", "no_show"])
def test_it_refuses_to_cancel_a_session_with_ruptures(as_therapist, rupture, status):
    session = rupture.session

    response = as_therapist.post(f"/sessions/{session.pk}/status", {"status": status})

    assert response.status_code == 400
    assert_error_beside(
        response, "status", "Ruptures are logged for this session", form="status_form"
    )
    session.refresh_from_db()
    assert session.status == SessionStatus.HELD


@pytest.mark.parametrize("status", ["done", "HELD", "", "held\x00"])
def test_it_refuses_an_unknown_status_with_400(as_therapist, held_session, status):
    response = as_therapist.post(f"/sessions/{held_session.pk}/status", {"status": status})

    assert response.status_code == 400
    assertContains(response, 'id="id_status_error"', status_code=400)
    held_session.refresh_from_db()
    assert held_session.status == SessionStatus.HELD


def test_it_refuses_a_status_without_one(as_therapist, held_session):
    response = as_therapist.post(f"/sessions/{held_session.pk}/status")

    assert_error_beside(response, "status", "This field is required.", form="status_form")
    assert response.status_code == 400


def test_it_answers_a_get_on_status_with_405(as_therapist, held_session):
    assert as_therapist.get(f"/sessions/{held_session.pk}/status").status_code == 405


@pytest.mark.parametrize("persona", ["supervisor", *PERSONAS_WHO_MAY_NOT_READ])
def test_it_lets_no_one_else_change_the_status(request, client, past_scheduled_session, persona):
    sign_in(request, client, persona)
    url = f"/sessions/{past_scheduled_session.pk}/status"

    assert client.post(url, {"status": "held"}).status_code == 404
    past_scheduled_session.refresh_from_db()
    assert past_scheduled_session.status == SessionStatus.SCHEDULED


# --- /sessions/<id>/no-rupture -------------------------------------------------------------

def test_it_notes_a_held_session_as_rupture_free(as_therapist, held_session):
    assert held_session in as_therapist.get("/").context["awaiting_log"]

    response = as_therapist.post(f"/sessions/{held_session.pk}/no-rupture", {"next": "/"})

    assertRedirects(response, "/")
    held_session.refresh_from_db()
    assert held_session.no_rupture_noted_at is not None
    home = as_therapist.get("/")
    assert held_session not in home.context["awaiting_log"]
    assertContains(home, "Every session held this week is logged.")
    assertNotContains(home, f'action="/sessions/{held_session.pk}/no-rupture"')


def test_it_goes_back_to_the_session_without_next(as_therapist, held_session):
    response = as_therapist.post(f"/sessions/{held_session.pk}/no-rupture")

    assertRedirects(response, f"/sessions/{held_session.pk}/")


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/",
        "//evil.example/",
        "http://testserver.evil.example/",
        "javascript:alert(1)",
    ],
)
def test_it_ignores_a_next_that_leaves_the_site(as_therapist, held_session, next_url):
    response = as_therapist.post(f"/sessions/{held_session.pk}/no-rupture", {"next": next_url})

    assertRedirects(response, f"/sessions/{held_session.pk}/")
    held_session.refresh_from_db()
    assert held_session.no_rupture_noted_at is not None


def test_it_settles_a_past_session_still_marked_scheduled_as_held_and_rupture_free(as_therapist, client_record):
    session = make_session(client_record, days_ago=0.1, status="scheduled")
    assert session in as_therapist.get("/").context["awaiting_log"]

    as_therapist.post(f"/sessions/{session.pk}/no-rupture", {"next": "/"})

    session.refresh_from_db()
    assert (session.status, session.no_rupture_noted_at is not None) == ("held", True)


@pytest.mark.parametrize("status,days_ago", [("scheduled", -1), ("cancelled", 1), ("no_show", 1)])
def test_it_refuses_to_note_a_session_not_held(as_therapist, client_record, status, days_ago):
    session = make_session(client_record, days_ago=days_ago, status=status)

    response = as_therapist.post(f"/sessions/{session.pk}/no-rupture", {"next": "/"}, follow=True)

    assert response.redirect_chain == [(f"/sessions/{session.pk}/", 302)]
    assert "Only a session that was held can be noted as rupture-free." in messages_of(response)
    session.refresh_from_db()
    assert session.no_rupture_noted_at is None


def test_it_refuses_to_note_a_session_with_a_rupture_as_rupture_free(as_therapist, rupture):
    session = rupture.session

    response = as_therapist.post(f"/sessions/{session.pk}/no-rupture", follow=True)

    assert response.redirect_chain == [(f"/sessions/{session.pk}/", 302)]
    assert messages_of(response) == [
        "A rupture is logged for this session, so it was not rupture-free."
    ]
    session.refresh_from_db()
    assert session.no_rupture_noted_at is None


def test_it_answers_a_get_on_no_rupture_with_405(as_therapist, held_session):
    assert as_therapist.get(f"/sessions/{held_session.pk}/no-rupture").status_code == 405


@pytest.mark.parametrize("persona", ["supervisor", *PERSONAS_WHO_MAY_NOT_READ])
def test_it_lets_no_one_else_note_a_session(request, client, held_session, persona):
    sign_in(request, client, persona)

    assert client.post(f"/sessions/{held_session.pk}/no-rupture").status_code == 404
    held_session.refresh_from_db()
    assert held_session.no_rupture_noted_at is None
