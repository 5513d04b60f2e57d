"""Free text has a limit everywhere: on the form (with a counter), in the database, in
caseload files; and a request too large to read gets our own page, not Django's."""

import json

import pytest
from django.db import IntegrityError, connection, transaction
from pytest_django.asserts import assertContains

from audit.records import FREE_TEXT_MAX
from ruptures.models import RepairAttempt, RuptureEvent
from sessions.models import TherapySession
from tests.factories import make_attempt, make_session

TOO_LONG = "x" * (FREE_TEXT_MAX + 1)
RUPTURE = {"kind": "withdrawal", "actor": "client", "markers": ["denial"], "intensity": "3", "source": "unknown"}


@pytest.mark.parametrize("field", ["noticed", "hypothesis", "plan"])
def test_it_refuses_rupture_text_over_the_limit_next_to_the_field(as_therapist, held_session, field):
    response = as_therapist.post(f"/sessions/{held_session.pk}/ruptures/new", {**RUPTURE, field: TOO_LONG})

    assert response.status_code == 400
    assert not RuptureEvent.objects.exists()
    assertContains(response, f'id="id_{field}_error"', status_code=400)
    assertContains(response, f"at most {FREE_TEXT_MAX} characters", status_code=400)


def test_it_takes_text_right_at_the_limit(as_therapist, held_session):
    at_limit = "y" * FREE_TEXT_MAX
    response = as_therapist.post(f"/sessions/{held_session.pk}/ruptures/new", {**RUPTURE, "plan": at_limit})

    assert response.status_code == 302
    assert RuptureEvent.objects.get().plan == at_limit


def test_it_shows_the_limit_and_a_counter_on_the_form(as_therapist, held_session):
    response = as_therapist.get(f"/sessions/{held_session.pk}/ruptures/new")

    for field in ("noticed", "hypothesis", "plan"):
        assertContains(response, f'maxlength="{FREE_TEXT_MAX}"')
        counter = f'<p class="help counter" id="id_{field}-counter">Up to {FREE_TEXT_MAX} characters.</p>'
        assertContains(response, counter)
    assertContains(response, 'src="/static/js/app.js"')


@pytest.mark.parametrize(
    "model,field",
    [(RuptureEvent, "noticed"), (RuptureEvent, "hypothesis"), (RuptureEvent, "plan"),
     (RepairAttempt, "note"), (TherapySession, "note")],
)
def test_the_database_refuses_text_over_the_limit(rupture, model, field):
    make_attempt(rupture)
    with pytest.raises(IntegrityError, match="max_length"), transaction.atomic():
        model.objects.update(**{field: TOO_LONG})


def test_it_answers_an_oversized_request_with_a_page_of_its_own(as_therapist, held_session):
    url = f"/sessions/{held_session.pk}/ruptures/new"
    response = as_therapist.post(
        url, {**RUPTURE, "plan": "z" * 3_000_000}, HTTP_REFERER=f"http://testserver{url}"
    )

    assert response.status_code == 413
    assertContains(response, "That was too much to save at once", status_code=413)
    assertContains(response, "nothing was saved", status_code=413)
    # Still inside the app: its navigation, and the way back to the form.
    assertContains(response, 'aria-label="Main"', status_code=413)
    assertContains(response, f'href="http://testserver{url}"', status_code=413)
    assert not RuptureEvent.objects.exists()


def test_it_does_not_link_back_to_another_site(as_therapist, held_session):
    response = as_therapist.post(
        f"/sessions/{held_session.pk}/ruptures/new", {"plan": "z" * 3_000_000},
        HTTP_REFERER="https://evil.example/",
    )

    assert response.status_code == 413
    assert b"evil.example" not in response.content


def test_it_serves_a_favicon(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"


# --- The alliance check's free text: each text item's own limit, from the instrument ----

def _client_link(session):
    from checks.services import make_client_link

    _, token = make_client_link(session=session, by=session.client.therapist)
    return token


def test_the_database_refuses_a_check_answer_over_its_items_limit(held_session, shipped_instruments):
    from checks.models import AllianceCheck
    from tests.factories import make_check

    check = make_check(held_session, "client", tension="no", together=4, say_more="y" * 1000)  # at the limit
    checks = AllianceCheck.objects.filter(pk=check.pk)
    with pytest.raises(IntegrityError, match="say_more must be text of at most 1000"), transaction.atomic():
        checks.update(answers={"tension": "no", "together": 4, "say_more": "z" * 1001})
    # A write that skips the ORM is refused the same way, and so is a text item's answer that is not text.
    for answers in ('{"say_more": "' + "z" * 1001 + '"}', '{"say_more": 7}', '{"say_more": ["a"]}'):
        with pytest.raises(IntegrityError, match="max_length"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE checks_alliancecheck SET answers = %s::jsonb WHERE id = %s", [answers, check.pk])
    with pytest.raises(IntegrityError, match="max_length"), transaction.atomic():
        make_check(make_session(held_session.client, days_ago=2), "client", tension="no", say_more="z" * 1001)
    assert AllianceCheck.objects.get(pk=check.pk).answers["say_more"] == "y" * 1000


def test_the_database_reads_the_limit_from_the_checks_own_instrument(held_session, shipped_instruments):
    """A clinic's instrument with a shorter limit: the database holds its checks to that one."""
    from checks.instruments import load_file
    from checks.models import AllianceCheck, Instrument
    from tests.factories import make_check

    load_file(json.dumps(THERAPIST_V2).encode(), instrument_model=Instrument)
    check = make_check(held_session, "therapist", tension="no", together=4, thoughts="t" * 120)
    assert check.instrument.version == 2
    with pytest.raises(IntegrityError, match="thoughts must be text of at most 120"), transaction.atomic():
        AllianceCheck.objects.filter(pk=check.pk).update(answers={"tension": "no", "thoughts": "t" * 121})
    # Answers that keep to the limit, a declined check, and other items are none of its business.
    AllianceCheck.objects.filter(pk=check.pk).update(answers={"tension": "no", "together": 5, "thoughts": ""})
    make_check(held_session, "client", declined=True)


THERAPIST_V2 = {
    "format": "rupture-log instrument",
    "instruments": [{
        "slug": "alliance_check", "version": 2, "respondent": "therapist", "title": "After the session",
        "items": [
            {"slug": "tension", "type": "choice", "meaning": "tension", "text": "Any tension?",
             "choices": [{"slug": "yes", "label": "Yes"}, {"slug": "no", "label": "No"}]},
            {"slug": "together", "type": "scale", "meaning": "together", "text": "Together?",
             "anchors": {"1": "poorly", "5": "very well"}},
            {"slug": "thoughts", "type": "text", "optional": True, "max_length": 120,
             "text": "Anything to note for yourself?"},
        ],
    }],
}


def test_the_client_page_shows_the_limit_as_a_hint_that_becomes_a_counter(client, held_session,
                                                                          shipped_instruments):
    page = client.get(f"/c/{_client_link(held_session)}").content.decode()

    assert 'maxlength="1000"' in page
    assert 'aria-describedby="id_say_more-counter"' in page
    assert '<p class="hint counter" id="id_say_more-counter">Up to 1000 characters.</p>' in page
    # Our own script, deferred (the CSP allows no other): the form posts without it.
    assert '<script src="/static/js/app.js" defer></script>' in page


def test_the_therapists_check_form_shows_a_counter_for_any_text_item(as_therapist, held_session,
                                                                     shipped_instruments):
    from checks.instruments import load_file
    from checks.models import AllianceCheck, Instrument

    load_file(json.dumps(THERAPIST_V2).encode(), instrument_model=Instrument)
    page = as_therapist.get(f"/sessions/{held_session.pk}/").content.decode()

    assert 'name="thoughts"' in page and 'maxlength="120"' in page
    assert '<p class="help counter" id="id_thoughts-counter">Up to 120 characters.</p>' in page
    response = as_therapist.post(f"/sessions/{held_session.pk}/check",
                                 {"tension": "no", "together": "4", "thoughts": "t" * 121})
    assert response.status_code == 400
    assertContains(response, "at most 120 characters", status_code=400)
    assert not AllianceCheck.objects.exists()
