"""An admin's journey in a real Chromium: a report on screen, a PDF asked for, watched
until it is made, and downloaded."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import Role
from reports import services
from reports.models import JobStatus, ReportJob
from tests import test_browser
from tests.factories import PASSWORD, make_client, make_rupture, make_session
from tests.test_browser import wait_for_path

browser = test_browser.browser
page = test_browser.page
pytestmark = test_browser.pytestmark


@pytest.fixture(autouse=True)
def _role_groups(transactional_db):
    for role in Role.values:
        Group.objects.get_or_create(name=role)


def test_an_admin_asks_for_a_pdf_watches_it_finish_and_downloads_it(
    live_server, page, admin_user, therapist, monkeypatch
):
    client = make_client(therapist)
    for days in range(1, 12):
        make_rupture(make_session(client, days_ago=days))
    # The worker is the test here: the job waits until the test makes it, so the page's
    # polling is what shows it ready.
    monkeypatch.setattr(services, "_send", lambda job_id: None)

    page.goto(f"{live_server.url}/accounts/login/?next=/reports/alliance/")
    page.fill("#id_username", admin_user.username)
    page.fill("#id_password", PASSWORD)
    page.press("#id_password", "Enter")
    wait_for_path(page, "/reports/alliance/")

    # Custom dates around the sessions, through htmx: the filters land in the URL.
    today = timezone.localdate()
    page.select_option("#id_period", "custom")
    page.fill("#id_start", (today - timedelta(days=20)).isoformat())
    page.fill("#id_end", today.isoformat())
    page.select_option("#id_by", "therapist")
    page.wait_for_url(lambda url: "by=therapist" in url and "start=" in url)
    page.locator("td[data-metric=held_sessions]", has_text="11").first.wait_for()
    assert page.locator("th[scope=row]", has_text="Dana Lee").count() >= 1

    page.get_by_role("button", name="Make a PDF").click()
    wait_for_path(page, r"/reports/jobs/[0-9a-f-]+/")
    page.locator("#job-status", has_text="Waiting to start").wait_for()
    job = ReportJob.objects.get()
    assert job.filters["by"] == "therapist" and job.requested_by == admin_user

    services.make_pdf(job_id=job.pk)
    assert ReportJob.objects.get().status == JobStatus.DONE
    link = page.get_by_role("link", name="Download the PDF")
    link.wait_for(timeout=15_000)  # the status region polls every two seconds
    with page.expect_download() as download:
        link.click()
    content = open(download.value.path(), "rb").read()
    assert content.startswith(b"%PDF") and download.value.suggested_filename.endswith(".pdf")
