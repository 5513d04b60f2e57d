from datetime import date

import pytest
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from sessions.models import Client, ClientStatus, SessionStatus
from tests.factories import make_client, make_rupture, make_session
from tests.helpers import assert_error_beside, assert_reads_no_name_nor_password_hash, sign_in

PERSONAS_WHO_MAY_NOT_READ = ["other_therapist", "other_supervisor", "admin_user"]




def results_of(response):
    return [c.code for c in response.context["page"].object_list]


def client_with_history(therapist, code=None, *, open_ruptures=1, resolved=0):
    client = make_client(therapist, code=code)
    held = make_session(client, days_ago=3)
    make_session(client, days_ago=-3, status=SessionStatus.SCHEDULED)
    for _ in range(open_ruptures):
        make_rupture(held)
    for _ in range(resolved):
        make_rupture(held, repair_status="resolved")
    return client


# --- /clients/ ---------------------------------------------------------------------

def test_it_lists_only_the_therapists_own_clients(as_therapist, client_record, other_therapist):
    make_client(other_therapist, code="X-0001")

    response = as_therapist.get("/clients/")

    assert response.status_code == 200
    assert results_of(response) == ["C-0001"]
    assertNotContains(response, "X-0001")
    assertContains(response, 'href="/clients/new"')


def test_it_shows_a_supervisor_their_supervisees_clients(
    as_supervisor, client_record, other_therapist
):
    make_client(other_therapist, code="X-0001")

    response = as_supervisor.get("/clients/")

    assert results_of(response) == ["C-0001"]
    assertNotContains(response, "X-0001")
    assertNotContains(response, 'href="/clients/new"')


def test_it_shows_an_admin_no_clients(as_admin, client_record):
    response = as_admin.get("/clients/")

    assert response.status_code == 200
    assert results_of(response) == []
    assertNotContains(response, "C-0001")
    assertContains(response, "No clients match.")


def test_it_shows_open_rupture_counts_and_the_last_held_session(as_therapist, therapist):
    client_with_history(therapist, code="C-0100", open_ruptures=2, resolved=3)
    make_client(therapist, code="C-0200")

    response = as_therapist.get("/clients/")

    rows = {c.code: c for c in response.context["page"].object_list}
    assert rows["C-0100"].open_ruptures == 2
    assert rows["C-0100"].last_session is not None
    assert rows["C-0200"].open_ruptures == 0
    assert rows["C-0200"].last_session is None
    assertContains(response, "<strong>2</strong>", html=True)


def test_it_searches_by_case_code(as_therapist, therapist):
    for code in ["C-0100", "C-0101", "D-0100"]:
        make_client(therapist, code=code)

    response = as_therapist.get("/clients/", {"q": " c-010 "})

    assert results_of(response) == ["C-0100", "C-0101"]
    assert response.context["q"] == "c-010"


def test_it_filters_by_status(as_therapist, therapist):
    make_client(therapist, code="C-A", status=ClientStatus.ACTIVE)
    make_client(therapist, code="C-P", status=ClientStatus.PAUSED)
    make_client(therapist, code="C-D", status=ClientStatus.DISCHARGED)

    assert results_of(as_therapist.get("/clients/", {"status": "paused"})) == ["C-P"]
    assert results_of(as_therapist.get("/clients/", {"status": "discharged", "q": "C-"})) == ["C-D"]


def test_it_ignores_an_unknown_status(as_therapist, therapist):
    make_client(therapist, code="C-A")
    make_client(therapist, code="C-P", status=ClientStatus.PAUSED)

    response = as_therapist.get("/clients/", {"status": "'; drop table--"})

    assert response.status_code == 200
    assert results_of(response) == ["C-A", "C-P"]


def test_it_treats_a_nul_byte_in_the_search_as_text_not_a_crash(as_therapist, client_record):
    response = as_therapist.get("/clients/", {"q": "C-00\x0001"})

    assert response.status_code == 200
    assert results_of(response) == ["C-0001"]


def test_it_pages_fifty_clients_at_a_time(as_therapist, therapist):
    for i in range(55):
        make_client(therapist, code=f"C-{i:04d}")

    first = as_therapist.get("/clients/")
    second = as_therapist.get("/clients/", {"page": 2})

    assert len(results_of(first)) == 50
    assertContains(first, "Page 1 of 2")
    assertContains(first, "page=2")
    assert results_of(second) == [f"C-{i:04d}" for i in range(50, 55)]
    assertContains(second, "page=1")


@pytest.mark.parametrize("page, expected", [("abc", 1), ("0", 2), ("999", 2), ("-1", 2)])
def test_it_answers_a_bad_page_number_with_a_real_page(as_therapist, therapist, page, expected):
    for i in range(51):
        make_client(therapist, code=f"C-{i:04d}")

    response = as_therapist.get("/clients/", {"page": page})

    assert response.status_code == 200
    assert response.context["page"].number == expected


def test_it_keeps_the_search_in_the_page_links(as_therapist, therapist):
    for i in range(51):
        make_client(therapist, code=f"C-{i:04d}")

    response = as_therapist.get("/clients/", {"q": "C-", "status": "active"})

    assertContains(response, "?q=C-&amp;status=active&amp;page=2")


def test_it_renders_only_the_results_for_htmx(as_therapist, client_record):
    response = as_therapist.get("/clients/", {"q": "C-0"}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<div id="results">')
    assertContains(response, "C-0001")
    assertNotContains(response, 'role="search"')
    # The count goes to the page's polite status line, which stays in place.
    assertContains(response, '<span id="results-status" hx-swap-oob="innerHTML">1 client found.</span>')


def test_it_renders_the_whole_page_without_htmx(as_therapist, client_record):
    response = as_therapist.get("/clients/")

    assertContains(response, "<html")
    assertContains(response, 'id="results"')


@pytest.mark.parametrize("persona", ["therapist", "supervisor"])
def test_it_lists_clients_in_a_constant_number_of_queries(
    request, client, therapist, django_assert_num_queries, persona
):
    sign_in(request, client, persona)
    for _ in range(10):
        client_with_history(therapist, open_ruptures=2)
    # The session, the user, and the page with the list's length beside its rows
    # (config.folds.page: no COUNT first).
    with django_assert_num_queries(3) as few:
        assert len(results_of(client.get("/clients/"))) == 10

    for _ in range(50):
        client_with_history(therapist, open_ruptures=2)
    with django_assert_num_queries(3) as many:
        assert len(results_of(client.get("/clients/"))) == 50

    assert len(many.captured_queries) == len(few.captured_queries)
    # The list reads the columns it prints: not the clients' names, nor their therapists'
    # password hashes.
    assert_reads_no_name_nor_password_hash(many.captured_queries)


def test_it_sends_anonymous_visitors_to_sign_in(client, client_record):
    response = client.get("/clients/?q=C")

    assertRedirects(
        response, "/accounts/login/?next=/clients/%3Fq%3DC", fetch_redirect_response=False
    )


def test_it_refuses_to_post_to_the_list(as_therapist):
    assert as_therapist.post("/clients/").status_code == 405


# --- /clients/new ------------------------------------------------------------------

def new_client_data(**overrides):
    data = {"code": "C-0100", "name": "", "status": "active", "started_on": "2025-03-01"}
    return {**data, **overrides}


def test_it_creates_a_client_for_the_signed_in_therapist(as_therapist, therapist):
    response = as_therapist.post("/clients/new", new_client_data(name="J. Doe"))

    assertRedirects(response, "/clients/C-0100/")
    client = Client.objects.get(code="C-0100")
    assert client.therapist == therapist
    assert client.name == "J. Doe"
    assert client.status == ClientStatus.ACTIVE
    assert client.started_on == date(2025, 3, 1)


def test_it_ignores_a_posted_therapist(as_therapist, therapist, other_therapist):
    as_therapist.post("/clients/new", new_client_data(therapist=other_therapist.pk))

    assert Client.objects.get(code="C-0100").therapist == therapist


def test_it_shows_the_new_client_form(as_therapist):
    response = as_therapist.get("/clients/new")

    assert response.status_code == 200
    assertContains(response, 'name="code"')


def test_it_refuses_a_duplicate_code_beside_the_field(as_therapist, client_record):
    response = as_therapist.post("/clients/new", new_client_data(code="C-0001", name="Other"))

    assert response.status_code == 200
    assert_error_beside(response, "code", "already exists")
    assertContains(response, "Nothing was saved")
    assert Client.objects.count() == 1
    client_record.refresh_from_db()
    assert client_record.name == ""


def test_it_refuses_a_code_already_used_by_another_therapist(as_therapist, other_therapist):
    make_client(other_therapist, code="C-0100")

    response = as_therapist.post("/clients/new", new_client_data())

    assert_error_beside(response, "code", "already exists")
    assert Client.objects.get(code="C-0100").therapist == other_therapist


@pytest.mark.parametrize(
    "code", ["C 01", "../x", "-C01", ".x", "C/01", "C-01\x00", "Ç-01", "C" * 33]
)
def test_it_refuses_a_malformed_code_beside_the_field(as_therapist, code):
    response = as_therapist.post("/clients/new", new_client_data(code=code))

    assert response.status_code == 200
    assert response.context["form"].errors["code"]
    assertContains(response, 'id="id_code_error"')
    assert not Client.objects.exists()


def test_it_requires_a_code(as_therapist):
    response = as_therapist.post("/clients/new", new_client_data(code="  "))

    assert_error_beside(response, "code", "This field is required.")
    assert not Client.objects.exists()


@pytest.mark.parametrize(
    "field, value", [("status", "closed"), ("started_on", "yesterday"), ("name", "x\x00y")]
)
def test_it_refuses_a_bad_field_and_saves_nothing(as_therapist, field, value):
    response = as_therapist.post("/clients/new", new_client_data(**{field: value}))

    assert response.status_code == 200
    assertContains(response, f'id="id_{field}_error"')
    assert not Client.objects.exists()


@pytest.mark.parametrize("persona", ["supervisor", "admin_user"])
def test_it_sends_a_non_therapist_back_to_the_list_instead_of_adding(db, request, client, persona):
    sign_in(request, client, persona)

    assertRedirects(client.get("/clients/new"), "/clients/")
    assertRedirects(client.post("/clients/new", new_client_data()), "/clients/")
    assert not Client.objects.exists()


# --- /clients/<code>/ ----------------------------------------------------------------

def test_it_shows_the_timeline_of_sessions_and_ruptures(as_therapist, client_record, rupture):
    upcoming = make_session(client_record, days_ago=-2, status=SessionStatus.SCHEDULED)
    quiet = make_session(client_record, days_ago=8)
    quiet.no_rupture_noted_at = quiet.starts_at
    quiet.save()

    response = as_therapist.get("/clients/C-0001/")

    assert response.status_code == 200
    assert list(response.context["sessions"]) == [upcoming, rupture.session, quiet]
    for session in (upcoming, rupture.session, quiet):
        assertContains(response, f'href="/sessions/{session.pk}/"')
    assertContains(response, f'href="/ruptures/{rupture.pk}/"')
    assertContains(response, "No rupture noted.")
    assertContains(response, 'href="/clients/C-0001/edit"')
    assertContains(response, 'href="/clients/C-0001/sessions/new"')


def test_a_long_therapy_shows_its_newest_sessions_and_folds_the_rest(as_therapist, client_record):
    from sessions.views import TIMELINE_SHOWN_AT_FIRST

    held = [make_session(client_record, days_ago=7 * week) for week in range(1, TIMELINE_SHOWN_AT_FIRST + 4)]
    make_rupture(held[-1])  # on the oldest session, folded away at first

    response = as_therapist.get("/clients/C-0001/")
    assert list(response.context["sessions"]) == held[:TIMELINE_SHOWN_AT_FIRST]
    assertContains(response, 'href="?all=timeline#timeline-h"')
    assertContains(response, "Show 3 earlier sessions")
    assertNotContains(response, f'href="/sessions/{held[-1].pk}/"')

    # The link works without JavaScript: the whole timeline, and no link any more.
    whole = as_therapist.get("/clients/C-0001/?all=timeline")
    assert list(whole.context["sessions"]) == held
    assertContains(whole, f'href="/sessions/{held[-1].pk}/"')
    assertNotContains(whole, "?all=timeline")
    assertContains(whole, 'id="timeline-fold"')


def test_it_lists_only_open_ruptures_in_the_open_section(as_therapist, held_session):
    older = make_session(held_session.client, days_ago=10)
    unaddressed = make_rupture(held_session, repair_status="unaddressed")
    attempted = make_rupture(older, repair_status="attempted")
    unresolved = make_rupture(held_session, repair_status="unresolved")
    resolved = make_rupture(held_session, repair_status="resolved")
    partly = make_rupture(older, repair_status="partially_resolved")

    response = as_therapist.get("/clients/C-0001/")

    assert list(response.context["open_ruptures"]) == [attempted, unaddressed, unresolved]
    html = response.content.decode()
    open_section = html[html.index('id="open-h"') : html.index('id="timeline-h"')]
    for r in (unaddressed, attempted, unresolved):
        assert f'href="/ruptures/{r.pk}/"' in open_section
    for r in (resolved, partly):
        assert f'href="/ruptures/{r.pk}/"' not in open_section
        assert f'href="/ruptures/{r.pk}/"' in html  # still in the timeline


def test_it_shows_a_supervisor_the_client_read_only(as_supervisor, rupture):
    response = as_supervisor.get("/clients/C-0001/")

    assert response.status_code == 200
    assertContains(response, f'href="/ruptures/{rupture.pk}/"')
    assertContains(response, "read-only")
    assertNotContains(response, "/clients/C-0001/edit")
    assertNotContains(response, "/sessions/new")


@pytest.mark.parametrize("persona", PERSONAS_WHO_MAY_NOT_READ)
def test_it_hides_a_client_from_everyone_else(request, client, client_record, persona):
    sign_in(request, client, persona)

    assert client.get("/clients/C-0001/").status_code == 404


def test_it_stops_showing_a_client_when_supervision_ends(as_supervisor, supervisor, client_record):
    supervisor.supervisee_links.update(ends_on=date(2000, 1, 1), starts_on=date(1999, 1, 1))

    assert as_supervisor.get("/clients/C-0001/").status_code == 404


def test_it_sends_anonymous_visitors_from_a_client_to_sign_in(client, client_record):
    response = client.get("/clients/C-0001/")

    assertRedirects(
        response, "/accounts/login/?next=/clients/C-0001/", fetch_redirect_response=False
    )


@pytest.mark.parametrize("code", ["C-9999", "c-0001", "C-0001%00", "%00", "C-0001%0A"])
def test_it_answers_an_unknown_code_with_404(as_therapist, client_record, code):
    assert as_therapist.get(f"/clients/{code}/").status_code == 404


def test_it_refuses_to_post_to_a_client(as_therapist, client_record):
    assert as_therapist.post("/clients/C-0001/").status_code == 405


# --- /clients/<code>/edit --------------------------------------------------------------

def test_it_lets_the_therapist_change_status_and_name(as_therapist, client_record):
    response = as_therapist.post(
        "/clients/C-0001/edit",
        new_client_data(code="C-0001", name="Renamed", status="paused", started_on="2024-01-02"),
    )

    assertRedirects(response, "/clients/C-0001/")
    client_record.refresh_from_db()
    assert client_record.name == "Renamed"
    assert client_record.status == ClientStatus.PAUSED
    assert client_record.started_on == date(2024, 1, 2)


def test_it_never_changes_the_code(as_therapist, client_record):
    response = as_therapist.post(
        "/clients/C-0001/edit", new_client_data(code="C-0999", status="paused")
    )

    assertRedirects(response, "/clients/C-0001/")
    client_record.refresh_from_db()
    assert client_record.code == "C-0001"
    assert client_record.status == ClientStatus.PAUSED
    assert not Client.objects.filter(code="C-0999").exists()


def test_it_shows_the_edit_form_with_the_code_disabled(as_therapist, client_record):
    response = as_therapist.get("/clients/C-0001/edit")

    assert response.status_code == 200
    assert response.context["form"].fields["code"].disabled
    assertContains(response, "cannot change")


def test_it_refuses_a_bad_status_on_edit_and_saves_nothing(as_therapist, client_record):
    response = as_therapist.post(
        "/clients/C-0001/edit", new_client_data(code="C-0001", name="Renamed", status="gone")
    )

    assert response.status_code == 200
    assert_error_beside(response, "status", "Select a valid choice.")
    client_record.refresh_from_db()
    assert client_record.name == ""
    assert client_record.status == ClientStatus.ACTIVE


@pytest.mark.parametrize("persona", ["supervisor", *PERSONAS_WHO_MAY_NOT_READ])
def test_it_lets_no_one_else_edit_a_client(request, client, client_record, persona):
    sign_in(request, client, persona)

    assert client.get("/clients/C-0001/edit").status_code == 404
    response = client.post("/clients/C-0001/edit", new_client_data(code="C-0001", name="Hacked"))
    assert response.status_code == 404
    client_record.refresh_from_db()
    assert client_record.name == ""

