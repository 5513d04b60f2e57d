"""Safety first in a real Chromium: a risk rupture, then the supervisor's home at once."""

import pytest
from django.contrib.auth.models import Group

from accounts.models import Role
from ruptures.models import RuptureEvent
from tests import test_browser
from tests.factories import PASSWORD, make_session
from tests.test_browser import wait_for_path

browser = test_browser.browser
page = test_browser.page
pytestmark = test_browser.pytestmark


@pytest.fixture(autouse=True)
def _role_groups(transactional_db):
    """live_server flushes the database between journeys, and with it the role groups."""
    for role in Role.values:
        Group.objects.get_or_create(name=role)


def sign_in(page, base, user, next_path):
    page.goto(f"{base}/accounts/login/?next={next_path}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.press("#id_password", "Enter")
    wait_for_path(page, next_path)


def test_a_risk_rupture_puts_safety_first_and_reaches_the_supervisor_at_once(
    live_server, page, browser, therapist, supervisor, client_record, settings, mailoutbox
):
    settings.RISK_PROTOCOL_NAME = "Clinic Risk Protocol"
    settings.RISK_PROTOCOL_URL = "https://intranet.example/risk-protocol"
    session = make_session(client_record, days_ago=1)
    form_path = f"/sessions/{session.pk}/ruptures/new"
    sign_in(page, live_server.url, therapist, form_path)

    page.check("input[name=kind][value=withdrawal]")
    page.locator("#markers input[value=self_criticism_hopelessness]").check()
    page.check("input[name=intensity][value='5']")
    # htmx asks about risk as soon as hopelessness is marked at intensity 4-5.
    page.locator("#risk .callout", has_text="is there a risk concern?").wait_for()
    page.check("input[name=risk][value=self_harm]")
    # The live suggestions put the protocol first before anything is saved.
    page.locator("#suggestions [data-testid=safety-first]").wait_for()
    page.locator("button", has_text="Log rupture").click()
    wait_for_path(page, r"/ruptures/\d+/")

    rupture = RuptureEvent.objects.get()
    assert rupture.risk == "self_harm"
    safety = page.locator("[data-testid=safety-first]").first
    assert "Safety first: follow the clinic's risk protocol" in safety.inner_text()
    assert safety.locator("a").get_attribute("href") == "https://intranet.example/risk-protocol"
    # The safety item comes before every suggestion on the page.
    assert page.evaluate(
        "() => { const s = document.querySelector('[data-testid=safety-first]');"
        " const first = document.querySelector('.suggestion');"
        " return !!(s.compareDocumentPosition(first) & Node.DOCUMENT_POSITION_FOLLOWING); }"
    )
    assert page.locator(".suggestion.top").get_attribute("data-strategy") not in {
        "invite_discussion", "disclose_internal_experience", "link_to_session_pattern", "link_to_outside_pattern",
    }
    page.locator("summary", has_text="Held back for now").click()
    assert "safety comes first" in page.locator(".held-back").inner_text()

    # The supervisor was e-mailed a link only, and sees it first on their home page.
    [email] = [m for m in mailoutbox if m.to == [supervisor.email]]
    assert client_record.code not in email.body
    other = browser.new_context(viewport={"width": 1200, "height": 900})
    supervisor_page = other.new_page()
    supervisor_page.set_default_timeout(10_000)
    sign_in(supervisor_page, live_server.url, supervisor, "/")
    first_card = supervisor_page.locator("main section").first
    assert first_card.get_attribute("data-testid") == "risk-concerns"
    assert client_record.code in first_card.inner_text()
    assert "Self-harm" in first_card.inner_text()
    supervisor_page.locator("[data-testid=risk-concerns] a", has_text="Withdrawal").click()
    wait_for_path(supervisor_page, f"/ruptures/{rupture.pk}/")
    supervisor_page.locator("[data-testid=safety-first]").first.wait_for()
    other.close()
