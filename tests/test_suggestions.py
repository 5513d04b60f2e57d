"""The engine inside the product: live in the rupture form, on the rupture page."""

import re
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ruptures.models import RuptureEvent
from strategies.suggestions import facts_of, history_before, suggestions_for, track_records
from tests.factories import make_attempt, make_client, make_rupture, make_session

LIVE = {"kind": "withdrawal", "markers": ["abstract_communication"], "source": "pattern", "intensity": "3"}


def live(client, session, params):
    url = f"/sessions/{session.pk}/ruptures/new"
    return client.get(url, params, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="suggestions")


def test_it_answers_the_live_form_with_the_suggestions_partial(as_therapist, held_session):
    response = live(as_therapist, held_session, {"kind": "confrontation", "markers": ["rejects_intervention"],
                                                 "source": "task_disagreement"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and 'id="suggestions"' not in html  # its inside: the live region stays
    assert html.index("Change tasks or goals together") < html.index("Invite discussion")
    # The short line at the foot of a phone's screen follows, out of band, and is announced.
    assert '<span id="suggestions-peek-text" hx-swap-oob="innerHTML">Suggested first: <strong>Change tasks' in html


def test_it_shows_no_suggestions_until_a_kind_is_chosen(as_therapist, held_session):
    response = live(as_therapist, held_session, {"markers": ["denial"]})
    assert response.context["suggestions"] == []
    assert "Choose the kind of rupture" in response.content.decode()


def test_it_ignores_unknown_slugs_while_typing(as_therapist, held_session):
    response = live(as_therapist, held_session, {"kind": "withdrawal", "markers": ["sulking"],
                                                 "source": "astrology", "intensity": "99"})
    assert response.status_code == 200 and response.context["suggestions"]


def test_it_answers_the_suggestion_endpoint_in_at_most_five_queries(as_therapist, client_record):
    sessions = [make_session(client_record, days_ago=7 * n) for n in range(1, 12)]
    for s in sessions:
        make_attempt(make_rupture(s, markers=["abstract_communication"]), outcome="resolved")
    with CaptureQueriesContext(connection) as queries:
        response = live(as_therapist, sessions[0], LIVE)
    assert response.status_code == 200
    # The endpoint's own queries: the session (with its client), the history, the
    # track records. Signing in and the sliding session cookie are the framework's.
    own = [q["sql"] for q in queries if not re.search(r"django_session|accounts_user|SAVEPOINT", q["sql"])]
    assert len(own) <= 5, own
    assert len(queries) <= 10


def test_it_keeps_suggestions_to_the_therapists_own_sessions(as_other_therapist, held_session):
    assert live(as_other_therapist, held_session, LIVE).status_code == 404


def test_it_reads_only_the_last_five_held_sessions_as_history(client_record):
    now = timezone.now()
    current = make_session(client_record, starts_at=now)
    for weeks in range(1, 8):
        make_rupture(make_session(client_record, starts_at=now - timedelta(weeks=weeks)), markers=["denial"])
    make_session(client_record, starts_at=now - timedelta(days=3), status="cancelled")
    history = history_before(current)
    assert [p.sessions_ago for p in history] == [1, 2, 3, 4, 5]
    assert all(p.markers == ("denial",) for p in history)


def test_it_detects_a_pattern_from_the_database_whatever_the_source(client_record):
    now = timezone.now()
    for weeks in (1, 3):
        make_rupture(make_session(client_record, starts_at=now - timedelta(weeks=weeks)), markers=["topic_shift"])
    current = make_session(client_record, starts_at=now)
    rupture = make_rupture(current, markers=["topic_shift"], source="misunderstanding")
    top = suggestions_for(current, facts_of(rupture))[0]
    assert top.family == "expressive"


def test_it_counts_the_clients_and_the_clinics_record(client_record, therapist):
    mine = make_rupture(make_session(client_record, days_ago=14))
    make_attempt(mine, strategy="invite_discussion", outcome="resolved")
    make_attempt(mine, strategy="invite_discussion", outcome="attempted")
    elsewhere = make_rupture(make_session(make_client(therapist), days_ago=14))
    make_attempt(elsewhere, strategy="invite_discussion", outcome="resolved")
    confrontation = make_rupture(make_session(make_client(therapist), days_ago=14), kind="confrontation",
                                 markers=["defends_self"])
    make_attempt(confrontation, strategy="invite_discussion", outcome="resolved")
    for_client, for_clinic = track_records(client_record, "withdrawal")
    assert for_client["invite_discussion"] == (1, 2)
    assert for_clinic["invite_discussion"] == (2, 3)


def test_it_offers_i_used_this_on_the_rupture_page(as_therapist, rupture):
    response = as_therapist.get(f"/ruptures/{rupture.pk}/")
    html = response.content.decode()
    assert "Suggested responses" in html
    for suggestion in response.context["suggestions"]:
        assert f"/ruptures/{rupture.pk}/?strategy={suggestion.strategy}#record-attempt" in html
    prefilled = as_therapist.get(f"/ruptures/{rupture.pk}/", {"strategy": "invite_discussion"})
    assert prefilled.context["attempt_form"]["strategy"].value() == "invite_discussion"


def test_it_shows_the_supervisor_suggestions_without_i_used_this(as_supervisor, rupture):
    html = as_supervisor.get(f"/ruptures/{rupture.pk}/").content.decode()
    assert "Suggested responses" in html and "I used this" not in html


def test_it_shows_suggestions_on_the_full_form_page_without_javascript(as_therapist, held_session):
    # Past the first two sessions, where talk about the relationship would be held back.
    make_session(held_session.client, days_ago=14)
    make_session(held_session.client, days_ago=21)
    data = {**LIVE, "_refresh": "1", "actor": "client"}
    response = as_therapist.post(f"/sessions/{held_session.pk}/ruptures/new", data)
    assert response.status_code == 200 and not RuptureEvent.objects.exists()
    assert response.context["suggestions"][0].family == "expressive"
    assert "Suggested responses" in response.content.decode()


def test_the_history_carries_only_attempts_still_on_the_record(client_record, therapist):
    """What was tried and how it went: attempts hidden by a deletion are not in it."""
    now = timezone.now()
    kept = make_rupture(make_session(client_record, starts_at=now - timedelta(weeks=9)))
    later = make_session(client_record, starts_at=now - timedelta(weeks=8))
    make_attempt(kept, strategy="invite_discussion", outcome="unresolved")
    make_attempt(kept, session=later, strategy="clarify_misunderstanding", outcome="resolved")
    gone = make_rupture(make_session(client_record, starts_at=now - timedelta(weeks=7)))
    make_attempt(gone, strategy="invite_discussion", outcome="resolved")
    current = make_session(client_record, starts_at=now)
    later.soft_delete(by=therapist, reason="Logged on the wrong client.")
    gone.soft_delete(by=therapist, reason="Duplicate entry.")
    history = history_before(current)
    assert [[a.strategy for a in past.attempts] for past in history] == [["invite_discussion"]]
