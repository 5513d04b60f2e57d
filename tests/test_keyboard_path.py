"""The therapist's path, keyboard only: from the sign-in page to a saved rupture for the
session just held, in at most 25 navigation keys (Tab, arrows, Enter, Space; typed text
is not counted). The home page puts that session's "Log a rupture" first for this."""

import os

import pytest

from ruptures.models import RuptureEvent
from sessions.models import SessionStatus
from tests.browser import launch, needs_chromium, wait_for_path
from tests.factories import PASSWORD, make_client, make_rupture, make_session

pytestmark = [pytest.mark.browser, needs_chromium]

NAVIGATION_KEY_BUDGET = 25


class Keys:
    """The keyboard, counting every navigation key pressed."""

    def __init__(self, page):
        self.page, self.pressed = page, []

    def press(self, key):
        self.pressed.append(key)
        self.page.keyboard.press(key)

    def type(self, text):
        self.page.keyboard.type(text)

    def focused(self, test_js):
        return self.page.evaluate(f"(el => {test_js})(document.activeElement)")

    def tab_to(self, description, test_js, limit=NAVIGATION_KEY_BUDGET):
        for _ in range(limit):
            self.press("Tab")
            if self.focused(test_js):
                return
        raise AssertionError(f"could not reach {description} with the Tab key")

    def skip_to_content(self):
        self.tab_to("the skip link", "el.classList.contains('skip-link')", limit=1)
        self.press("Enter")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.mark.parametrize("width", [1280, 390])
def test_a_therapist_logs_the_session_just_held_in_at_most_25_keys(live_server, browser, role_groups, therapist, width):
    # A busy caseload: flags, open ruptures and other sessions all compete for the top.
    for n in range(12):
        other = make_client(therapist)
        make_session(other, days_ago=-1 - n / 4, status=SessionStatus.SCHEDULED)
        make_rupture(make_session(other, days_ago=8 + n), intensity=1 + n % 5)
        make_session(other, days_ago=2 + n / 10)  # held earlier this week, not logged either
    just_held = make_session(make_client(therapist, code="C-0129"), days_ago=0.04)

    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    keys = Keys(page)

    page.goto(f"{live_server.url}/accounts/login/")
    if not keys.focused("el.name === 'username'"):
        keys.tab_to("the username field", "el.name === 'username'")
    keys.type(therapist.username)
    keys.press("Tab")
    keys.type(PASSWORD)
    keys.press("Enter")
    wait_for_path(page, "/")

    keys.skip_to_content()
    keys.tab_to("the first Log a rupture", "el.textContent.trim().startsWith('Log a rupture')")
    assert keys.focused(f"el.getAttribute('href') === '/sessions/{just_held.pk}/ruptures/new'")
    keys.press("Enter")
    wait_for_path(page, f"/sessions/{just_held.pk}/ruptures/new")
    # Autofocus lands once the page has loaded: the address changes first, and on a
    # loaded CI machine the assertion below once ran in between.
    page.wait_for_load_state("load")

    # The new rupture's page opens on its first question.
    assert keys.focused("el.name === 'kind' && el.value === 'withdrawal'")
    keys.press("Space")
    page.locator("#markers input[value=denial]").wait_for()
    keys.tab_to("the first marker", "el.value === 'denial'")
    keys.press("Space")
    keys.tab_to("intensity", "el.name === 'intensity'")
    keys.press("ArrowRight")
    keys.press("ArrowRight")  # intensity 3
    keys.press("Enter")
    wait_for_path(page, r"/ruptures/\d+/")

    rupture = RuptureEvent.objects.get(session=just_held)
    assert (rupture.kind, rupture.markers, rupture.intensity) == ("withdrawal", ["denial"], 3)
    assert len(keys.pressed) <= NAVIGATION_KEY_BUDGET, " ".join(keys.pressed)
    context.close()


def test_on_a_phone_a_suggestion_stays_in_view_and_a_failed_save_focuses_the_first_error(
    live_server, browser, role_groups, therapist
):
    session = make_session(make_client(therapist), days_ago=0.05)
    context = browser.new_context(viewport={"width": 390, "height": 740})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("[name=username]", therapist.username)
    page.fill("[name=password]", PASSWORD)
    page.click("button[type=submit]")
    wait_for_path(page, "/")
    page.goto(f"{live_server.url}/sessions/{session.pk}/ruptures/new")

    # Saving with nothing chosen: the page comes back with the focus on the first field at fault.
    page.click("button.primary")
    wait_for_path(page, f"/sessions/{session.pk}/ruptures/new")
    page.wait_for_function("document.activeElement && document.activeElement.name === 'kind'")

    page.check("input[name=kind][value=confrontation]")
    page.locator("#markers input[value=complaint_about_therapist]").check()
    peek = page.locator(".suggestions-peek")
    peek.get_by_text("Suggested first:").wait_for()
    # Filling in the plan, far down the form, the first suggestion is still on screen.
    page.locator("[name=plan]").fill("Ask what felt unfair.")
    box = peek.bounding_box()
    assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= 740
    assert page.locator("#id_plan-counter").inner_text() == "21 of 2000 characters"
    context.close()
