"""The client's check in a real Chromium: the therapist makes a link, a phone answers it."""

import re

import pytest

from checks.models import AllianceCheck
from tests.a11y import assert_accessible
from tests.factories import PASSWORD, make_session
from tests.test_browser import CHROMIUM, browser, page, tab_to, wait_for_path  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(),
                                                      reason="no Chromium here")]


def test_the_therapist_asks_and_the_client_answers_on_a_phone_keyboard_only(
    live_server, browser, page, role_groups, shipped_instruments, therapist, client_record  # noqa: F811
):
    session = make_session(client_record, days_ago=1)
    page.goto(f"{live_server.url}/accounts/login/?next=/sessions/{session.pk}/")
    page.fill("input[name=username]", therapist.username)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    wait_for_path(page, f"/sessions/{session.pk}/")

    # The therapist's own answers, then the link for the client.
    page.check("input[name=tension][value=no]")
    page.check("input[name=together][value='4']")
    page.click("text=Save check")
    wait_for_path(page, f"/sessions/{session.pk}/")
    page.click("text=Ask the client")
    url = page.locator("#client-url").inner_text()
    assert re.fullmatch(rf"{re.escape(live_server.url)}/c/[A-Za-z0-9_-]{{22}}", url)
    assert page.locator("svg.qr path").count() == 1

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        client_page = phone.new_page()
        client_page.set_default_timeout(10_000)
        client_page.goto(url)
        text = client_page.locator("body").inner_text()
        assert client_record.code not in text and "Dana Lee" not in text
        assert client_page.evaluate("document.documentElement.scrollWidth") <= 390
        client_page.set_viewport_size({"width": 360, "height": 740})
        assert client_page.evaluate("document.documentElement.scrollWidth") <= 360
        assert_accessible(client_page, context="the client's check page")

        tab_to(client_page, "the tension question", "el.name === 'tension'")
        client_page.keyboard.press("Space")  # "Yes", the first choice
        tab_to(client_page, "the intensity question", "el.name === 'intensity'")
        client_page.keyboard.press("Space")
        for _ in range(3):
            client_page.keyboard.press("ArrowRight")  # to 4
        tab_to(client_page, "the worked-through question", "el.name === 'worked_through'")
        client_page.keyboard.press("Space")
        client_page.keyboard.press("ArrowRight")  # 2
        tab_to(client_page, "the together question", "el.name === 'together'")
        client_page.keyboard.press("Space")
        client_page.keyboard.press("ArrowRight")
        client_page.keyboard.press("ArrowRight")  # 3
        tab_to(client_page, "the free-text box", "el.name === 'say_more'")
        client_page.keyboard.type("I wasn't sure you heard me.")
        # The plain "Up to 1000 characters" hint, live: the same counter as the therapist's forms.
        assert client_page.locator("#id_say_more-counter").inner_text() == "27 of 1000 characters"
        tab_to(client_page, "the send button", "el.textContent.trim() === 'Send my answers'")
        client_page.keyboard.press("Enter")
        client_page.wait_for_selector("text=Thank you")
        assert_accessible(client_page, context="the thank-you page")
        client_page.goto(url)
        assert "no longer works" in client_page.locator("h1").inner_text()
    finally:
        phone.close()

    check = AllianceCheck.objects.client().get(session=session)
    assert check.answers == {"tension": "yes", "intensity": 4, "worked_through": 2, "together": 3,
                             "say_more": "I wasn't sure you heard me."}

    page.goto(f"{live_server.url}/sessions/{session.pk}/")
    rows = [[cell.strip() for cell in row.split("\t")]
            for row in page.locator("table.check-sides tbody tr").all_inner_texts()]
    assert rows == [
        ["Tension, distance or misunderstanding", "No", "Yes"],
        ["How strong (1-5)", "—", "4"],
        ["Worked through by the end (1-5)", "—", "2"],
        ["Worked well together (1-5)", "4", "3"],
    ]
    assert "I wasn't sure you heard me." in page.locator(".client-words").inner_text()
