"""A supervisor's journey in a real Chromium: filter, sort, drill down, mark discussed."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Group

from accounts.models import Role
from supervision.models import SupervisionNote
from tests import test_browser
from tests.factories import PASSWORD, make_rupture, make_session
from tests.test_browser import wait_for_path

# The browser journeys' own Chromium and page fixtures, and their skip-without-Chromium mark.
browser = test_browser.browser
page = test_browser.page
pytestmark = test_browser.pytestmark


def query_of(page):
    return parse_qs(urlsplit(page.url).query)


@pytest.fixture(autouse=True)
def _role_groups(transactional_db):
    """Another browser journey may have emptied the database before this one (live_server
    flushes it), taking the role groups that migration accounts.0002 made: make them again."""
    for role in Role.values:
        Group.objects.get_or_create(name=role)


def test_it_takes_a_supervisor_from_the_dashboard_to_a_discussed_rupture(
    live_server, page, supervisor, therapist, client_record
):
    recent = make_rupture(make_session(client_record, days_ago=3), markers=["minimal_response"])
    older = make_session(client_record, days_ago=50)
    make_rupture(older, markers=["minimal_response"], repair_status="resolved")

    page.goto(f"{live_server.url}/accounts/login/?next=/supervision/")
    page.fill("#id_username", supervisor.username)
    page.fill("#id_password", PASSWORD)
    page.press("#id_password", "Enter")
    wait_for_path(page, "/supervision/")
    row = page.locator("table.measures tbody tr", has_text="Dana Lee")
    assert row.locator("td").nth(3).inner_text() == "2"  # ruptures in the last 12 weeks

    # A filter change swaps the results in place and puts the filters in the URL.
    page.select_option("#id_period", "4")
    # (A predicate, not a JS string: the page's CSP forbids eval, as it should.)
    page.wait_for_url(lambda url: "period=4" in url)
    page.locator(".period-line", has_text="(28 days)").wait_for()
    assert row.locator("td").nth(3).inner_text() == "1"
    assert page.locator("#results").count() == 1 and page.locator("#filters").count() == 1

    # A column header sorts, through htmx too, and keeps the filters.
    page.locator("thead a", has_text="Ruptures").first.click()
    page.wait_for_url(lambda url: "sort=-ruptures" in url)
    assert query_of(page)["period"] == ["4"]
    assert page.locator("th[aria-sort=descending]", has_text="Ruptures").count() == 1
    assert page.locator("#id_sort").input_value() == "-ruptures"

    # A bad custom period is explained beside the field, without leaving the page.
    page.select_option("#id_period", "custom")
    error = page.locator("#id_start_error", has_text="Enter the first day of the custom period.")
    error.wait_for()
    page.select_option("#id_period", "4")
    page.locator(".period-line").wait_for()
    assert page.locator("#id_start_error").inner_text() == ""

    # The numbers behind the charts are there on request.
    numbers = page.locator(".chart-numbers")
    assert numbers.bounding_box()["width"] <= 1
    page.locator("summary", has_text="Show the numbers").click()
    assert numbers.bounding_box()["width"] > 100

    page.locator("table.measures a", has_text="Dana Lee").click()
    wait_for_path(page, "/supervision/dlee/")
    assert query_of(page)["period"] == ["4"]
    page.locator(".to-discuss a", has_text="Withdrawal").click()
    wait_for_path(page, f"/ruptures/{recent.pk}/")

    page.fill("#id_comment", "Name the silence gently next session.")
    page.locator("button", has_text="Mark as discussed").click()
    page.locator("#supervision", has_text="Name the silence gently next session.").wait_for()
    assert re.search(r"#supervision$", page.url)
    assert SupervisionNote.objects.get().rupture == recent
