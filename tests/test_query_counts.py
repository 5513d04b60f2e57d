"""The record pages run a fixed number of queries, whatever the size of the record."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import make_attempt, make_rupture, make_session


def grow(client_record, n):
    """n held sessions, each with a rupture left open and an attempt, and one session ahead."""
    ruptures = []
    for i in range(n):
        session = make_session(client_record, starts_at=timezone.now() - timedelta(days=7 * (n - i)))
        rupture = make_rupture(session, markers=["minimal_response", "topic_shift"], plan=f"plan {i}")
        make_attempt(rupture)
        ruptures.append(rupture)
    upcoming = make_session(client_record, starts_at=timezone.now() + timedelta(days=1), status="scheduled")
    return ruptures, upcoming


def pages(client_record, ruptures, upcoming):
    return {
        "client": f"/clients/{client_record.code}/",
        "rupture": f"/ruptures/{ruptures[-1].pk}/",
        "session": f"/sessions/{ruptures[-1].session_id}/",
        "brief": f"/sessions/{upcoming.pk}/brief",
    }


def queries(browser, url):
    with CaptureQueriesContext(connection) as captured:
        assert browser.get(url).status_code == 200
    return len(captured)


# Everything the request runs: signing in, the session, the access-log event and the page.
EXPECTED = {"client": 8, "rupture": 10, "session": 8, "brief": 11}


@pytest.mark.parametrize("page", sorted(EXPECTED))
def test_a_record_page_runs_the_same_queries_for_three_ruptures_or_twelve(
    as_therapist, client_record, page, django_assert_num_queries
):
    few = pages(client_record, *grow(client_record, 3))
    with django_assert_num_queries(EXPECTED[page]):
        as_therapist.get(few[page])
    many = pages(client_record, *grow(client_record, 9))
    assert queries(as_therapist, many[page]) == EXPECTED[page]
