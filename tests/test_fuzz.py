"""Property-based fuzzing of every form: whatever arrives, no 500 and nothing half-saved."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ruptures import vocabulary as v
from ruptures.models import RepairAttempt, RuptureEvent
from sessions.models import Client, TherapySession

SLUGS = sorted(
    {s for table in (v.KINDS, v.ACTORS, v.MARKERS, v.SOURCES, v.INTERNAL_SIGNALS, v.REPAIR_STATUSES,
                     v.STRATEGY_TABLE) for s, *_ in table}
    | {"scheduled", "held", "cancelled", "no_show", "active", "paused", "discharged"}
)
NASTY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=60) | st.sampled_from(
    ["", " ", "\x00", "0", "-1", "6", "99999999999999999999", "1e9", "2026-02-30T25:61", "9999-12-31T23:59",
     "0001-01-01T00:00", "<script>alert(1)</script>", "' OR 1=1 --", "x" * 5000, "NaN", "true", "[]"]
)
VALUE = st.sampled_from(SLUGS) | NASTY_TEXT | st.integers(-10, 10_000).map(str)
FIELDS = ["kind", "actor", "markers", "intensity", "minute", "source", "internal_signals", "internal_signals_other",
          "noticed", "hypothesis", "plan", "version", "session", "strategy", "outcome", "note", "repair_status",
          "status", "starts_at", "duration_minutes", "code", "name", "started_on", "reason", "_refresh"]
FORM_DATA = st.dictionaries(st.sampled_from(FIELDS), st.lists(VALUE, min_size=1, max_size=3), max_size=12)

COUNTED = (Client, TherapySession, RuptureEvent, RepairAttempt)

ENDPOINTS = [
    "/clients/new",
    "/clients/{code}/edit",
    "/clients/{code}/sessions/new",
    "/sessions/{session}/status",
    "/sessions/{session}/delete",
    "/sessions/{session}/ruptures/new",
    "/ruptures/{rupture}/edit",
    "/ruptures/{rupture}/attempts/new",
    "/ruptures/{rupture}/status",
    "/ruptures/{rupture}/delete",
    "/accounts/password_change/",
    "/accounts/mfa/verify",
    "/accounts/mfa/setup",
]


def counts():
    return tuple(model.all_objects.count() if hasattr(model, "all_objects") else model.objects.count()
                 for model in COUNTED)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_it_never_fails_on_any_form_input(endpoint, as_therapist, rupture):
    url = endpoint.format(code=rupture.session.client.code, session=rupture.session_id, rupture=rupture.pk)

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=FORM_DATA)
    def post_anything(data):
        before = counts()
        response = as_therapist.post(url, data)
        assert response.status_code < 500
        if response.status_code not in (301, 302):
            # Refused: nothing written (a re-rendered form may be 200, 400 or 409).
            assert counts() == before

    post_anything()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(query=st.dictionaries(st.sampled_from(["q", "status", "page", "kind", "markers", "strategy"]), VALUE,
                             max_size=4))
@pytest.mark.django_db
def test_it_never_fails_on_any_query_string(query, client, therapist, db):
    from tests.conftest import login

    login(client, therapist)
    for url in ("/clients/", "/"):
        assert client.get(url, query).status_code < 500


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(query=st.dictionaries(st.sampled_from(["period", "start", "end", "supervisee", "kind", "sort", "page"]),
                             VALUE | st.sampled_from(["custom", "4", "12", "26", "-ruptures", "trend", "dlee"]),
                             max_size=5))
@pytest.mark.django_db
def test_it_never_fails_on_any_dashboard_filter(query, client, supervisor, therapist, db):
    from tests.conftest import login

    login(client, supervisor)
    for url in ("/supervision/", f"/supervision/{therapist.username}/"):
        assert client.get(url, query).status_code < 500
        assert client.get(url, query, HTTP_HX_REQUEST="true").status_code < 500


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(query=st.dictionaries(
    st.sampled_from(["period", "month", "quarter", "start", "end", "by", "kind", "pseudonymise"]),
    VALUE | st.sampled_from(["custom", "month", "quarter", "0000-01", "9999-12", "2026-Q4", "9999-Q4",
                             "therapist", "supervisor", "2026-11-01", "9999-12-31"]),
    max_size=5))
@pytest.mark.django_db
def test_it_never_fails_on_any_report_filter(query, client, admin_user, db):
    from tests.conftest import login

    login(client, admin_user)
    for url in ("/reports/alliance/", "/reports/alliance/report.csv"):
        assert client.get(url, query).status_code < 500
    assert client.get("/reports/alliance/", query, HTTP_HX_REQUEST="true").status_code < 500
