from datetime import timedelta

import pytest
from django.utils import timezone

from ruptures.models import RepairAttempt, RuptureEvent
from sessions.models import SessionStatus
from tests.factories import make_attempt, make_client, make_rupture, make_session

VALID = {
    "kind": "withdrawal",
    "actor": "client",
    "markers": ["minimal_response", "topic_shift"],
    "intensity": "3",
    "source": "frame_concern",
    "internal_signals": ["shut_out"],
    "minute": "25",
    "noticed": "Went quiet after the referral letter came up.",
    "hypothesis": "Fears the letter will be shared.",
    "plan": "Ask how the letter question landed.",
}


def new_url(session):
    return f"/sessions/{session.pk}/ruptures/new"


# --- Logging a rupture ------------------------------------------------------------

def test_it_logs_a_rupture(as_therapist, held_session, therapist):
    response = as_therapist.post(new_url(held_session), VALID)
    rupture = RuptureEvent.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/ruptures/{rupture.pk}/"
    assert rupture.markers == ["minimal_response", "topic_shift"]
    assert rupture.internal_signals == ["shut_out"]
    assert rupture.repair_status == "unaddressed"
    assert rupture.created_by == therapist and rupture.updated_by == therapist
    assert rupture.version == 1


def test_it_marks_a_past_scheduled_session_held_when_a_rupture_is_logged(as_therapist, client_record):
    session = make_session(client_record, days_ago=0, status=SessionStatus.SCHEDULED,
                           starts_at=timezone.now() - timedelta(hours=1))
    as_therapist.post(new_url(session), VALID)
    session.refresh_from_db()
    assert session.status == SessionStatus.HELD


def test_it_logs_a_therapist_side_rupture_without_markers(as_therapist, held_session):
    data = {**VALID, "actor": "therapist", "markers": []}
    assert as_therapist.post(new_url(held_session), data).status_code == 302
    assert RuptureEvent.objects.get().markers == []


def test_it_keeps_markers_of_both_kinds_for_a_mixed_rupture(as_therapist, held_session):
    data = {**VALID, "markers": ["minimal_response", "complaint_about_progress"]}
    as_therapist.post(new_url(held_session), data)
    assert RuptureEvent.objects.get().markers == ["minimal_response", "complaint_about_progress"]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"markers": []}, "markers", "Pick at least one marker"),
        ({"markers": ["sulking"]}, "markers", "Select a valid choice"),
        ({"kind": "grumpy"}, "kind", "Select a valid choice"),
        ({"kind": ""}, "kind", "This field is required"),
        ({"intensity": "0"}, "intensity", "Select a valid choice"),
        ({"intensity": "6"}, "intensity", "Select a valid choice"),
        ({"intensity": "three"}, "intensity", "Select a valid choice"),
        ({"source": "astrology"}, "source", "Select a valid choice"),
        ({"internal_signals": ["hungry"]}, "internal_signals", "Select a valid choice"),
        ({"internal_signals": ["other"]}, "internal_signals_other", "Say in a few words"),
        ({"minute": "51"}, "minute", "The session lasted 50 minutes"),
        ({"minute": "-1"}, "minute", "greater than or equal to 0"),
        ({"minute": "abc"}, "minute", "Enter a whole number"),
    ],
)
def test_it_refuses_bad_input_with_a_message_beside_the_field(as_therapist, held_session, change, field, message):
    response = as_therapist.post(new_url(held_session), {**VALID, **change})
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not RuptureEvent.objects.exists()


def test_it_refuses_to_log_for_a_future_session(as_therapist, client_record):
    future = make_session(client_record, days_ago=-2, status=SessionStatus.SCHEDULED)
    response = as_therapist.post(new_url(future), VALID)
    assert response.status_code == 302
    assert not RuptureEvent.objects.exists()


def test_it_refuses_to_log_for_a_cancelled_session(as_therapist, client_record):
    cancelled = make_session(client_record, status=SessionStatus.CANCELLED)
    as_therapist.post(new_url(cancelled), VALID)
    assert not RuptureEvent.objects.exists()


def test_it_swaps_in_the_markers_of_the_chosen_kind_for_htmx(as_therapist, held_session):
    response = as_therapist.get(new_url(held_session), {"kind": "confrontation"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    # The inside of the region only: the region itself stays, and a polite status line
    # (swapped out of band) says what changed.
    assert "<html" not in html and 'id="markers"' not in html
    assert '<span id="markers-status" hx-swap-oob="innerHTML">The markers of this kind are shown below.</span>' in html
    primary, other = html.split("<details")
    assert 'value="complaint_about_therapist"' in primary
    assert 'value="minimal_response"' not in primary and 'value="minimal_response"' in other


def test_it_keeps_what_was_typed_when_the_kind_is_chosen_without_javascript(as_therapist, held_session):
    data = {**VALID, "kind": "confrontation", "_refresh": "1"}
    response = as_therapist.post(new_url(held_session), data)
    html = response.content.decode()
    assert response.status_code == 200
    assert not RuptureEvent.objects.exists()
    assert "Went quiet after the referral letter came up." in html
    assert 'value="complaint_about_therapist"' in html.split("<details")[0]
    assert not response.context["form"].errors


def test_it_asks_for_the_kind_before_showing_markers(as_therapist, held_session):
    html = as_therapist.get(new_url(held_session)).content.decode()
    assert "Choose the kind first" in html
    assert 'name="markers"' not in html


# --- Editing and concurrent edits -------------------------------------------------------

def test_it_edits_a_rupture_and_moves_the_version_on(as_therapist, rupture):
    data = {**VALID, "intensity": "4", "version": rupture.version}
    response = as_therapist.post(f"/ruptures/{rupture.pk}/edit", data)
    assert response.status_code == 302
    rupture.refresh_from_db()
    assert rupture.intensity == 4 and rupture.version == 2


def test_it_does_not_let_a_second_edit_overwrite_the_first_silently(as_therapist, rupture, therapist):
    first = {**VALID, "plan": "Plan A", "version": 1}
    second = {**VALID, "plan": "Plan B", "intensity": "5", "version": 1}
    assert as_therapist.post(f"/ruptures/{rupture.pk}/edit", first).status_code == 302
    response = as_therapist.post(f"/ruptures/{rupture.pk}/edit", second)
    rupture.refresh_from_db()
    assert response.status_code == 409
    assert rupture.plan == "Plan A" and rupture.intensity == 3
    html = response.content.decode()
    assert "saved this rupture while you were editing" in html
    assert "Plan A" in html and "Plan B" in html
    # The differences are named as the form names them, never by column name.
    assert response.context["conflict_rows"] == [("Intensity", "3", "5"), ("Plan to check it", "Plan A", "Plan B")]
    assert '<th scope="row">plan</th>' not in html
    # Saving again from the conflict page is a deliberate overwrite of the new version.
    assert response.context["form"]["version"].value() == 2
    assert as_therapist.post(f"/ruptures/{rupture.pk}/edit", {**second, "version": 2}).status_code == 302
    rupture.refresh_from_db()
    assert rupture.plan == "Plan B"


def test_it_refuses_a_status_change_based_on_a_stale_version(as_therapist, rupture):
    make_attempt(rupture)  # moves nothing: attempts through the ORM do not bump the version
    as_therapist.post(f"/ruptures/{rupture.pk}/status", {"repair_status": "attempted", "version": 1})
    response = as_therapist.post(f"/ruptures/{rupture.pk}/status", {"repair_status": "resolved", "version": 1})
    rupture.refresh_from_db()
    assert response.status_code == 302
    assert rupture.repair_status == "attempted"


def test_it_changes_the_repair_status(as_therapist, rupture):
    as_therapist.post(f"/ruptures/{rupture.pk}/status", {"repair_status": "resolved", "version": 1})
    rupture.refresh_from_db()
    assert rupture.repair_status == "resolved" and not rupture.is_open


def test_it_refuses_an_unknown_repair_status(as_therapist, rupture):
    response = as_therapist.post(f"/ruptures/{rupture.pk}/status", {"repair_status": "gone", "version": 1})
    rupture.refresh_from_db()
    assert response.status_code == 302 and rupture.repair_status == "unaddressed"


# --- Repair attempts ----------------------------------------------------------------------

def test_it_dates_the_sessions_of_the_attempt_form_as_every_other_page(as_therapist, rupture):
    from django.utils import timezone
    from django.utils.formats import date_format

    html = as_therapist.get(f"/ruptures/{rupture.pk}/").content.decode()

    label = date_format(timezone.localtime(rupture.session.starts_at), "D j M Y, H:i")
    assert f'<option value="{rupture.session_id}" selected>{label}</option>' in html
    assert f">{rupture.session.client.code} " not in html


def test_it_records_an_attempt_and_takes_its_outcome_as_the_status(as_therapist, rupture, client_record):
    later = make_session(client_record, days_ago=0, starts_at=timezone.now() - timedelta(hours=2))
    response = as_therapist.post(f"/ruptures/{rupture.pk}/attempts/new", {
        "session": later.pk, "strategy": "acknowledge_contribution", "outcome": "resolved",
        "note": "Talked it through.",
    })
    assert response.status_code == 302
    attempt = RepairAttempt.objects.get()
    assert (attempt.session, attempt.strategy, attempt.outcome) == (later, "acknowledge_contribution", "resolved")
    rupture.refresh_from_db()
    assert rupture.repair_status == "resolved" and rupture.version == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"strategy": "silence"}, "strategy"),
        ({"outcome": "unaddressed"}, "outcome"),
        ({"session": "999999"}, "session"),
    ],
)
def test_it_refuses_a_bad_attempt(as_therapist, rupture, change, field):
    data = {"session": rupture.session_id, "strategy": "invite_discussion", "outcome": "attempted", **change}
    response = as_therapist.post(f"/ruptures/{rupture.pk}/attempts/new", data)
    assert response.status_code == 400 and field in response.context["form"].errors
    assert not RepairAttempt.objects.exists()


def test_it_offers_only_this_clients_sessions_from_the_rupture_on(as_therapist, rupture, client_record, therapist):
    earlier = make_session(client_record, days_ago=9)
    elsewhere = make_session(make_client(therapist), days_ago=0)
    for session in (earlier, elsewhere):
        response = as_therapist.post(f"/ruptures/{rupture.pk}/attempts/new", {
            "session": session.pk, "strategy": "invite_discussion", "outcome": "attempted",
        })
        assert response.status_code == 400 and "session" in response.context["form"].errors
    assert not RepairAttempt.objects.exists()


def test_it_prefills_the_strategy_from_i_used_this(as_therapist, rupture):
    response = as_therapist.get(f"/ruptures/{rupture.pk}/", {"strategy": "provide_rationale"})
    assert response.context["attempt_form"]["strategy"].value() == "provide_rationale"


# --- Who may see and change a rupture --------------------------------------------------------

def rupture_urls(rupture):
    return {
        "detail": f"/ruptures/{rupture.pk}/",
        "edit": f"/ruptures/{rupture.pk}/edit",
        "attempt": f"/ruptures/{rupture.pk}/attempts/new",
        "new": f"/sessions/{rupture.session_id}/ruptures/new",
    }


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("as_therapist", {"detail": 200, "edit": 200, "attempt": 200, "new": 200}),
        ("as_supervisor", {"detail": 200, "edit": 404, "attempt": 404, "new": 404}),
        ("as_other_therapist", {"detail": 404, "edit": 404, "attempt": 404, "new": 404}),
        ("as_admin", {"detail": 404, "edit": 404, "attempt": 404, "new": 404}),
    ],
)
def test_it_lets_only_the_right_people_see_a_rupture(request, rupture, persona, expected):
    client = request.getfixturevalue(persona)
    got = {name: client.get(url).status_code for name, url in rupture_urls(rupture).items()}
    assert got == expected


def test_it_lets_no_one_else_post_to_a_rupture(as_other_therapist, rupture):
    responses = [
        as_other_therapist.post(f"/ruptures/{rupture.pk}/edit", {**VALID, "version": 1}),
        as_other_therapist.post(f"/ruptures/{rupture.pk}/status", {"repair_status": "resolved", "version": 1}),
        as_other_therapist.post(f"/ruptures/{rupture.pk}/attempts/new", {"session": rupture.session_id}),
        as_other_therapist.post(f"/sessions/{rupture.session_id}/ruptures/new", VALID),
    ]
    assert [r.status_code for r in responses] == [404, 404, 404, 404]
    rupture.refresh_from_db()
    assert rupture.version == 1 and RuptureEvent.objects.count() == 1


def test_it_shows_the_supervisor_a_read_only_rupture(as_supervisor, rupture):
    html = as_supervisor.get(f"/ruptures/{rupture.pk}/").content.decode()
    assert "Ask how the letter question landed." in html
    assert "Record attempt" not in html and f"/ruptures/{rupture.pk}/edit" not in html


def test_it_sends_anonymous_visitors_to_sign_in(client, rupture):
    response = client.get(f"/ruptures/{rupture.pk}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_it_answers_405_to_a_get_on_post_only_urls(as_therapist, rupture):
    assert as_therapist.get(f"/ruptures/{rupture.pk}/status").status_code == 405


def test_it_lists_a_rupture_on_the_clients_timeline(as_therapist, held_session):
    rupture = make_rupture(held_session, markers=["topic_shift"])
    html = as_therapist.get(f"/clients/{held_session.client.code}/").content.decode()
    assert f"/ruptures/{rupture.pk}/" in html and "Changes the subject" in html


def test_an_edit_without_its_version_is_refused_and_changes_nothing(as_therapist, rupture):
    response = as_therapist.post(f"/ruptures/{rupture.pk}/edit", {**VALID, "plan": "Overwritten"})
    assert response.status_code == 400
    assert "does not say which version" in response.content.decode()
    status = as_therapist.post(f"/ruptures/{rupture.pk}/status", {"repair_status": "resolved"})
    assert status.status_code == 400 and b"which version" in status.content
    rupture.refresh_from_db()
    assert (rupture.plan, rupture.repair_status, rupture.version) == (
        "Ask how the letter question landed.", "unaddressed", 1
    )
