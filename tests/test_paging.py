"""config.folds.page: Django's get_page in one query. Every answer is compared with the
paginator's own, so the pages behave as they did, links and bad numbers included."""

import pytest
from django.core.paginator import Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config import folds
from sessions.models import Client
from tests.factories import make_client

NUMBERS = [None, "", "abc", "1", "2", "3", "4", "999", "0", "-1", "2.0", " 2", 2, "9" * 25]


def as_seen(page):
    """What a template reads of a page."""
    return {
        "number": page.number, "rows": [c.pk for c in page.object_list], "count": page.paginator.count,
        "pages": page.paginator.num_pages, "has_next": page.has_next(), "has_previous": page.has_previous(),
        "start": page.start_index(), "end": page.end_index(),
    }


@pytest.mark.parametrize("size", [0, 1, 5, 6, 11])
def test_it_answers_every_page_number_as_the_paginator_does(therapist, size):
    for i in range(size):
        make_client(therapist, code=f"C-{i:04d}")
    clients = Client.objects.filter(therapist=therapist).order_by("code")

    for number in NUMBERS:
        expected = as_seen(Paginator(clients, 5).get_page(number))
        assert as_seen(folds.page(clients, number, 5)) == expected, number


def test_a_page_of_the_list_is_one_query(therapist):
    for i in range(12):
        make_client(therapist, code=f"C-{i:04d}")
    clients = Client.objects.filter(therapist=therapist).order_by("code")

    for number in ("1", "2", "3"):
        with CaptureQueriesContext(connection) as queries:
            as_seen(folds.page(clients, number, 5))
        assert len(queries) == 1, [q["sql"] for q in queries]
        assert "COUNT(" in queries[0]["sql"] and "OVER ()" in queries[0]["sql"]
