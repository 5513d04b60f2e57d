"""The client's voice in the alliance report: the dashboard's check figures, in every format."""

import html
import io
from datetime import timedelta

import openpyxl
import pytest
from django.utils import timezone

from reports.formats import csv_bytes, pdf_bytes, xlsx_bytes
from reports.metrics import BY_SLUG
from reports.report import Filters, build
from supervision.measures import Period
from tests.factories import make_check, make_client, make_rupture, make_session
from tests.test_reports import csv_rows, pdf_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def checked(therapist, shipped_instruments):
    client = make_client(therapist)
    plan = [("yes", "yes"), ("no", "no"), ("no", "yes"), ("yes", "no"), ("no", "declined"), (None, None)]
    sessions = []
    for n, (t, c) in enumerate(plan):
        session = make_session(client, days_ago=20 - n * 3)
        if t:
            make_check(session, "therapist", tension=t, together=4)
        if c == "declined":
            make_check(session, "client", declined=True)
        elif c:
            make_check(session, "client", tension=c, together=4)
        sessions.append(session)
    make_rupture(sessions[0])
    return sessions


def rows(admin_user, min_cell=0):
    today = timezone.localdate()
    report = build(admin_user, Filters(period=Period(today - timedelta(days=27), today), min_cell=min_cell),
                   as_of=timezone.now())
    whole = report.whole.period
    return {r["metric"]: r for r in csv_rows(csv_bytes(report))
            if r["period_start"] == whole.start.isoformat() and r["period_end"] == whole.end.isoformat()}


def test_the_report_carries_the_client_voice_with_its_n(checked, admin_user):
    got = rows(admin_user)
    assert (got["therapist_check_completion"]["value"], got["therapist_check_completion"]["n"]) == ("0.8333", "6")
    assert (got["client_check_completion"]["value"], got["client_check_completion"]["n"]) == ("0.6667", "6")
    assert (got["client_reported_ruptures"]["value"], got["client_reported_ruptures"]["n"]) == ("2", "4")
    assert (got["tension_agreement"]["value"], got["tension_agreement"]["n"]) == ("0.5000", "4")
    assert (got["tension_kappa"]["value"], got["tension_kappa"]["n"]) == ("0.0000", "4")
    assert (got["unlogged_client_reported"]["value"], got["unlogged_client_reported"]["n"]) == ("1", "4")
    # A therapist's check counts as a log: five of six sessions (the sixth has nothing).
    assert got["logging_completeness"]["value"] == "0.8333"


def test_small_numbers_hide_the_agreement_and_its_kappa(checked, admin_user):
    got = rows(admin_user, min_cell=5)
    assert (got["tension_agreement"]["value"], got["tension_agreement"]["n"]) == ("<5", "<5")
    assert (got["tension_kappa"]["value"], got["tension_kappa"]["n"]) == ("<5", "<5")
    assert got["unlogged_client_reported"]["value"] == "<5"


def test_a_deleted_check_leaves_the_report(checked, admin_user, therapist):
    from checks.models import AllianceCheck

    AllianceCheck.objects.get(session=checked[2], respondent="client").soft_delete(by=therapist, reason="x")
    got = rows(admin_user)
    assert (got["client_check_completion"]["n"], got["unlogged_client_reported"]["value"]) == ("6", "0")
    assert got["tension_agreement"]["n"] == "3"


def test_the_logging_definition_names_all_three_ways_in_every_format(checked, as_admin, admin_user):
    definition = BY_SLUG["logging_completeness"].definition
    # What the dashboard's query counts as logged (supervision/measures.py): all three.
    for way in ("a rupture logged", "“no rupture” noted", "the therapist's alliance check answered"):
        assert way in definition
    today = timezone.localdate()
    report = build(admin_user, Filters(period=Period(today - timedelta(days=27), today)), as_of=timezone.now())

    assert html.escape(definition) in as_admin.get("/reports/alliance/").content.decode()
    book = openpyxl.load_workbook(io.BytesIO(xlsx_bytes(report)), read_only=True)
    definitions = {r[0]: r[3] for r in book["Definitions"].iter_rows(values_only=True)}
    assert definitions["logging_completeness"] == definition
    assert definition in " ".join(pdf_text(pdf_bytes(report, clinic="Test clinic")).split())
