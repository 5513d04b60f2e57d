"""The alliance report's endings: how therapy ended, and dropouts after an open rupture."""

import io
from datetime import UTC, date, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from reports import services
from reports.formats import csv_bytes, pdf_bytes, xlsx_bytes
from reports.report import Filters, build
from supervision.measures import Period
from tests.factories import make_client, make_rupture, make_session
from tests.test_reports import AS_OF, NOVEMBER, TZ, at, csv_rows, figures, pdf_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def clinic_tz(settings):
    settings.TIME_ZONE = TZ
    return ZoneInfo(TZ)


ENDED = ("ended_planned", "ended_dropout", "ended_transfer", "ended_other")


def discharged(therapist, when, ending="dropout"):
    return make_client(therapist, status="discharged", ending=ending, discharged_at=when)


def counts(cells, *slugs):
    return tuple(cells[s].value for s in slugs)


def test_endings_count_in_the_month_of_the_discharge_in_the_clinics_time_zone(clinic_tz, admin_user, therapist):
    # 23:30 on 31 October in New York is already 1 November in UTC: October's.
    discharged(therapist, at(clinic_tz, 2026, 10, 31, 23, 30), "planned")
    discharged(therapist, at(clinic_tz, 2026, 11, 1, 0, 0), "planned")
    discharged(therapist, at(clinic_tz, 2026, 11, 30, 23, 59), "dropout")
    discharged(therapist, at(clinic_tz, 2026, 11, 15, 12), "transfer")
    discharged(therapist, at(clinic_tz, 2026, 11, 16, 12), "other")
    discharged(therapist, at(clinic_tz, 2026, 12, 1, 0, 0), "dropout")  # December's
    make_client(therapist)  # still in therapy

    _, cells = figures(admin_user)

    assert counts(cells, *ENDED) == (1, 1, 1, 1)
    assert {cells[s].n for s in ENDED} == {4}  # n: clients discharged in the period
    assert (cells["dropout_after_open_rupture"].value, cells["dropout_after_open_rupture"].n) == (0, 1)


def test_deleted_clients_leave_the_endings(clinic_tz, admin_user, therapist):
    kept = discharged(therapist, at(clinic_tz, 2026, 11, 20, 12))
    make_rupture(make_session(kept, starts_at=at(clinic_tz, 2026, 11, 10, 10)))
    gone = discharged(therapist, at(clinic_tz, 2026, 11, 21, 12))
    make_rupture(make_session(gone, starts_at=at(clinic_tz, 2026, 11, 10, 10)))
    gone.soft_delete(by=therapist, reason="wrong clinic")

    _, cells = figures(admin_user)

    assert (cells["ended_dropout"].value, cells["ended_dropout"].n) == (1, 1)
    assert cells["dropout_after_open_rupture"].value == 1


def test_a_dropout_counts_after_a_rupture_open_within_thirty_days(clinic_tz, admin_user, therapist):
    # Days of 24 hours, as for `open_over_14_days`: 30 of them back from 20 November cross the
    # end of daylight saving time, so 30 calendar days back would be 30 days and an hour.
    end = at(clinic_tz, 2026, 11, 20, 12).astimezone(UTC)
    exactly = discharged(therapist, end)
    make_rupture(make_session(exactly, starts_at=end - timedelta(days=30)))  # exactly 30 days: within
    too_early = discharged(therapist, end)
    make_rupture(make_session(too_early, starts_at=end - timedelta(days=30, minutes=1)))
    repaired = discharged(therapist, end)
    make_rupture(make_session(repaired, starts_at=end - timedelta(days=3)), repair_status="resolved")
    planned = discharged(therapist, end, "planned")  # not a dropout
    make_rupture(make_session(planned, starts_at=end - timedelta(days=3)))
    deleted_session = discharged(therapist, end)
    session = make_session(deleted_session, starts_at=end - timedelta(days=3))
    make_rupture(session)
    session.soft_delete(by=therapist, reason="entered by mistake")
    deleted_rupture = discharged(therapist, end)
    make_rupture(make_session(deleted_rupture, starts_at=end - timedelta(days=3))).soft_delete(
        by=therapist, reason="logged twice")
    missed = discharged(therapist, end)
    make_rupture(make_session(missed, starts_at=end - timedelta(days=3), status="no_show"))
    partly = discharged(therapist, end)  # partially resolved is not open
    make_rupture(make_session(partly, starts_at=end - timedelta(days=3)), repair_status="partially_resolved")
    still_open = discharged(therapist, end)
    make_rupture(make_session(still_open, starts_at=end - timedelta(hours=1)), repair_status="unresolved")

    _, cells = figures(admin_user)

    assert (cells["ended_dropout"].value, cells["ended_planned"].value) == (8, 1)
    # `exactly` and `still_open`; not the others.
    assert (cells["dropout_after_open_rupture"].value, cells["dropout_after_open_rupture"].n) == (2, 8)
    # The kind filter narrows the ruptures, not the endings.
    _, confrontations = figures(admin_user, Filters(period=NOVEMBER, kind="confrontation", min_cell=0))
    assert counts(confrontations, "ended_dropout", "dropout_after_open_rupture") == (8, 0)


def test_endings_go_to_the_clients_current_therapist_and_are_suppressed_when_small(
    clinic_tz, admin_user, therapist, other_therapist
):
    moved = discharged(therapist, at(clinic_tz, 2026, 11, 20, 12))
    moved.therapist = other_therapist
    moved.save()
    report, _ = figures(admin_user, Filters(period=NOVEMBER, by="therapist", min_cell=0))
    by_name = {g.name: report.whole.cells[g] for g in report.groups}
    assert by_name["apatel"]["ended_dropout"].value == 1
    assert by_name.get("dlee") is None or by_name["dlee"]["ended_dropout"].value == 0

    shown = build(admin_user, Filters(period=NOVEMBER), as_of=AS_OF)
    rows = {r["metric"]: r for r in csv_rows(csv_bytes(shown)) if r["period_end"] == "2026-11-30"}
    assert rows["ended_dropout"]["value"] == "<5"


def test_every_format_carries_the_endings(clinic_tz, as_admin, admin_user, therapist):
    for day in range(2, 8):
        client = discharged(therapist, at(clinic_tz, 2026, 11, day * 2, 12), "planned" if day == 7 else "dropout")
        make_rupture(make_session(client, starts_at=at(clinic_tz, 2026, 11, day * 2 - 1, 10)))
    query = "period=custom&start=2026-11-01&end=2026-11-30"
    page = as_admin.get(f"/reports/alliance/?{query}").content.decode()
    content = as_admin.get(f"/reports/alliance/report.csv?{query}").content
    book = openpyxl.load_workbook(io.BytesIO(as_admin.get(f"/reports/alliance/report.xlsx?{query}").content),
                                  read_only=True)
    report = build(admin_user, Filters(period=Period(date(2026, 11, 1), date(2026, 11, 30))),
                   as_of=services.report_time())

    whole = {r["metric"]: r for r in csv_rows(content) if r["group"] == "clinic"}
    # One planned ending is hidden; the five dropouts are hidden too, as the only other
    # ending: 6 discharged less 5 dropouts would give the planned one back.
    assert {s: (whole[s]["value"], whole[s]["n"]) for s in ENDED} == {
        "ended_planned": ("<5", "6"), "ended_dropout": ("x", "6"), "ended_transfer": ("0", "6"),
        "ended_other": ("0", "6")}
    assert (whole["dropout_after_open_rupture"]["value"], whole["dropout_after_open_rupture"]["n"]) == ("5", "x")
    summary = list(book["Summary"].iter_rows(values_only=True))
    totals = dict(zip(summary[0], summary[1], strict=True))
    assert (totals["ended_dropout"], totals["dropout_after_open_rupture"]) == ("x", 5)
    definitions = [r[0] for r in book["Definitions"].iter_rows(values_only=True)]
    assert set(ENDED) | {"dropout_after_open_rupture"} <= set(definitions)
    assert page.split('data-metric="ended_dropout">')[1].startswith("x <span")
    assert page.split('data-metric="dropout_after_open_rupture">')[1].startswith("5 <span")
    assert "Dropouts after an open rupture" in page and "Endings" in page
    text = pdf_text(pdf_bytes(report, clinic="Test clinic"))
    assert "Dropouts after an open rupture" in text and "5 (n=x)" in text
    assert xlsx_bytes(report) == xlsx_bytes(build(admin_user, report.filters, as_of=report.as_of))
