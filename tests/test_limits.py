"""Free text has a limit everywhere: on the form (with a counter), in the database, in
caseload files; and a request too large to read gets our own page, not Django's."""

import pytest
from django.db import IntegrityError, transaction
from pytest_django.asserts import assertContains

from audit.records import FREE_TEXT_MAX
from ruptures.models import RepairAttempt, RuptureEvent
from sessions.models import TherapySession
from tests.factories import make_attempt

TOO_LONG = "x" * (FREE_TEXT_MAX + 1)
RUPTURE = {"kind": "withdrawal", "actor": "client", "markers": ["denial"], "intensity": "3", "source": "unknown"}


@pytest.mark.parametrize("field", ["noticed", "hypothesis", "plan"])
def test_it_refuses_rupture_text_over_the_limit_next_to_the_field(as_therapist, held_session, field):
    response = as_therapist.post(f"/sessions/{held_session.pk}/ruptures/new", {**RUPTURE, field: TOO_LONG})

    assert response.status_code == 400
    assert not RuptureEvent.objects.exists()
    assertContains(response, f'id="id_{field}-errors"', status_code=400)
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
