"""Discharging a client: how the therapy ended, with what is still open shown first."""

from django.utils import timezone

from sessions.models import ClientStatus
from tests.factories import make_rupture, make_session


def url(client):
    return f"/clients/{client.code}/discharge"


def test_it_lists_the_clients_open_ruptures_before_asking_how_it_ended(as_therapist, client_record):
    open_one = make_rupture(make_session(client_record, days_ago=8))
    make_rupture(make_session(client_record, days_ago=1), repair_status="resolved")
    response = as_therapist.get(url(client_record))
    html = response.content.decode()
    assert list(response.context["open_ruptures"]) == [open_one]
    assert html.index(f"/ruptures/{open_one.pk}/") < html.index("How did the therapy end?")


def test_it_discharges_with_the_ending(as_therapist, client_record):
    before = timezone.now()
    response = as_therapist.post(url(client_record), {"ending": "dropout"})
    assert response.status_code == 302 and response["Location"] == f"/clients/{client_record.code}/"
    client_record.refresh_from_db()
    assert client_record.status == ClientStatus.DISCHARGED
    assert client_record.ending == "dropout"
    assert client_record.discharged_at >= before


def test_it_needs_the_ending_and_says_so_next_to_the_field(as_therapist, client_record):
    for data in ({}, {"ending": "vanished"}):
        response = as_therapist.post(url(client_record), data)
        assert response.status_code == 400
        assert response.context["form"].errors["ending"]
    client_record.refresh_from_db()
    assert client_record.status == ClientStatus.ACTIVE and client_record.ending == ""


def test_correcting_the_ending_keeps_the_discharge_date(as_therapist, client_record):
    as_therapist.post(url(client_record), {"ending": "dropout"})
    client_record.refresh_from_db()
    first = client_record.discharged_at
    as_therapist.post(url(client_record), {"ending": "transfer"})
    client_record.refresh_from_db()
    assert client_record.ending == "transfer" and client_record.discharged_at == first


def test_the_edit_form_leaves_discharging_to_the_discharge_form(as_therapist, client_record):
    response = as_therapist.post(
        f"/clients/{client_record.code}/edit", {"name": "", "status": "discharged", "started_on": "2026-01-01"}
    )
    assert response.status_code == 200 and response.context["form"].errors["status"]
    client_record.refresh_from_db()
    assert client_record.status == ClientStatus.ACTIVE


def test_taking_a_client_back_clears_the_ending(as_therapist, client_record):
    as_therapist.post(url(client_record), {"ending": "planned"})
    as_therapist.post(
        f"/clients/{client_record.code}/edit", {"name": "", "status": "active", "started_on": "2026-01-01"}
    )
    client_record.refresh_from_db()
    assert (client_record.status, client_record.ending, client_record.discharged_at) == ("active", "", None)


def test_the_client_page_says_how_it_ended(as_therapist, client_record):
    as_therapist.post(url(client_record), {"ending": "transfer"})
    html = as_therapist.get(f"/clients/{client_record.code}/").content.decode()
    assert "ended: transferred to another service or therapist" in html
