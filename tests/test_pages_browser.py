"""Every page of the route matrix, in a real Chromium, at a phone's width and a laptop's:
no sideways scrolling, and no serious or critical axe-core violation at either width.

One browser for the module, one signed-in context per persona: the pages are visited on
a realistic caseload (the demo clinic, smaller), where long tables and codes show. Each
page is loaded once and checked at the phone's width, then widened in place and checked
again (the stylesheets answer a resize as they answer a load; no script reads the width).
The clinic admin's pages of Django's admin site are crawled too: they are theirs to use.
"""

import os
from datetime import timedelta
from io import StringIO
from pathlib import Path
from string import Formatter

import pytest
from django.core.management import call_command
from django.db.models import Q
from django.test.utils import override_settings
from django.utils import timezone

from accounts.models import SupervisionLink, User
from exchange.models import CaseloadUpload, UploadStatus
from reports.models import ReportJob
from reports.report import Filters
from ruptures.models import RepairAttempt, RuptureEvent
from sessions.demo import DEMO_PASSWORD, Scale, build_demo_clinic
from sessions.models import TherapySession
from supervision.measures import Period
from supervision.models import SupervisionNote
from tests.a11y import assert_accessible
from tests.browser import horizontal_overflow, launch, needs_chromium, sign_in
from tests.test_access_matrix import MATRIX

pytestmark = [pytest.mark.browser, needs_chromium]

WIDTHS = (360, 1280)
# The personas of the matrix who see different pages; the "other_" ones see the same.
PERSONAS = {"anonymous": None, "therapist": "dlee", "supervisor": "mokafor", "admin_user": "admin"}
# Answers that are files, not pages: a browser downloads them instead of showing them.
NOT_HTML = {"healthz", "exchange_upload_report", "report_alliance_csv", "report_alliance_xlsx", "report_job_download",
            "admin:jsi18n"}
# Kept in artifacts/ for a look by eye: the phone views that matter most.
SCREENSHOTS = {"home", "rupture_new_held", "session_brief", "client_list", "client_discharge"}
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture
def clinic(role_groups, transactional_db):
    now = timezone.now()
    build_demo_clinic(Scale(supervisors=2, therapists=8, clients=64, weeks=10), now=now)
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
        call_command("flag_open_ruptures", stdout=StringIO())
    attempt = RepairAttempt.objects.filter(rupture__session__client__therapist__username="dlee").first()
    rupture = attempt.rupture
    # The clinical depth on show: a stage reached, and a recent risk concern (safety first on
    # the rupture and the brief, the supervisor's risk list first on their home).
    RepairAttempt.objects.filter(pk=attempt.pk).update(stage_reached="explored_experience")
    recent = RuptureEvent.objects.filter(
        session__client__therapist__username="dlee", session__starts_at__gte=now - timedelta(days=7)
    ).values("pk")[:1]
    RuptureEvent.objects.filter(Q(pk=rupture.pk) | Q(pk__in=recent)).update(risk="self_harm")
    SupervisionNote.objects.create(
        rupture=rupture, supervisor=User.objects.get(username="mokafor"),
        comment="Talked through the pacing; try naming the pull to please.",
    )
    upload = CaseloadUpload.objects.create(
        uploaded_by=User.objects.get(username="admin"), size=2,
        filename="clinic-export-2026-11-30-with-a-rather-long-name.json",
        sha256="0" * 64, content=b"{}", status=UploadStatus.REFUSED,
        problems=[["clients[3].sessions[12].ruptures[0].markers[2]", "unknown marker 'looks_away_a_lot'"]],
        counts={},
    )
    upcoming = TherapySession.objects.filter(client=rupture.session.client, starts_at__gt=now).first()
    admin = User.objects.get(username="admin")
    # A made PDF, and a deletion the therapist may undo: pages of records a demo clinic lacks.
    job = ReportJob.objects.create(
        requested_by=admin, as_of=now, status="done", content=b"%PDF-1.4", finished_at=now,
        filters=Filters(period=Period((now - timedelta(days=90)).date(), now.date())).as_dict(),
    )
    mistake = TherapySession.objects.filter(
        client__therapist__username="dlee", starts_at__lt=now, ruptures__isnull=True
    ).exclude(client=rupture.session.client).order_by("-starts_at").first()
    deletion = mistake.soft_delete(by=User.objects.get(username="dlee"), reason="Entered twice by mistake.")
    therapist = User.objects.get(username="dlee")
    return {"code": rupture.session.client.code, "session": (upcoming or rupture.session).pk,
            "rupture": rupture.pk, "upload": upload.pk, "held": rupture.session_id, "job": job.pk,
            "deletion": deletion.pk, "user": therapist.pk, "client_pk": rupture.session.client_id,
            "link": SupervisionLink.objects.filter(therapist=therapist).first().pk}


# The matrix's session is an upcoming one (for the brief); the rupture form is for a
# session that took place, so it is visited for one too.
EXTRA_PAGES = {"therapist": [("rupture_new_held", "/sessions/{held}/ruptures/new")]}


def pages_for(persona, records):
    for name, (template, statuses) in MATRIX.items():
        if name in NOT_HTML or statuses.get(persona, statuses["*"]) != 200:
            continue
        if {field for _, field, _, _ in Formatter().parse(template) if field} - set(records):
            # The client's check link: its page has its own browser test, at 390 and 360 px
            # with axe (tests/test_client_check_browser.py), and a visit here would count
            # against the rate limit of the address every test shares.
            assert name == "client_check", name
            continue
        yield name, template.format(**records)
    for name, template in EXTRA_PAGES.get(persona, []):
        yield name, template.format(**records)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


def test_every_page_fits_a_phone_and_a_laptop_and_passes_axe(live_server, browser, clinic):
    problems = []
    visited = set()
    for persona, username in PERSONAS.items():
        context = browser.new_context(viewport={"width": WIDTHS[0], "height": 800})
        page = context.new_page()
        page.set_default_timeout(15_000)
        if username:
            sign_in(page, live_server.url, username, DEMO_PASSWORD)
        for name, path in pages_for(persona, clinic):
            page.set_viewport_size({"width": WIDTHS[0], "height": 800})
            response = page.goto(live_server.url + path)
            assert response.status == 200, (persona, name, response.status)
            visited.add(name)
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 800})
                overflow = horizontal_overflow(page)
                if overflow:
                    problems.append(f"{persona} {name} at {width}px: {overflow}")
                if width == WIDTHS[0] and name in SCREENSHOTS:
                    ARTIFACTS.mkdir(exist_ok=True)
                    page.screenshot(path=ARTIFACTS / f"{persona}-{name}-{width}.png", full_page=True)
                try:
                    assert_accessible(page, context=f"{persona} {name} at {width}px")
                except AssertionError as exc:
                    problems.append(str(exc))
        context.close()
    assert {"deletion_restore", "report_job", "admin:accounts_user_change", "admin:accounts_user_add",
            "admin:accounts_supervisionlink_changelist", "admin:therapy_sessions_client_change",
            "admin:password_change"} <= visited
    assert len(visited) > 50
    assert not problems, "\n".join(problems)
