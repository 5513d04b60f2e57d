"""The research extract: de-identified rows, streamed by COPY."""

import csv
import io
import zipfile
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from audit.models import AccessEvent
from reports.research import CHECK_COLUMNS, RUPTURE_COLUMNS, copy_to, extracts, ruptures_extract
from supervision.measures import Period
from supervision.models import SupervisionNote
from tests.conftest import login
from tests.factories import make_attempt, make_check, make_client, make_rupture, make_session

pytestmark = pytest.mark.django_db

NY = ZoneInfo("America/New_York")
NOVEMBER = Period(date(2026, 11, 1), date(2026, 11, 30))
SECRET = "the client spoke of her sister Magdalena"


@pytest.fixture
def clinic(settings, therapist, other_therapist, supervisor):
    settings.TIME_ZONE = "America/New_York"
    mine = make_client(therapist, code="C-SECRET-1", name="Magdalena Q")
    first = make_session(mine, starts_at=datetime(2026, 10, 20, 23, 30, tzinfo=NY), note=SECRET)
    make_rupture(first)  # October: outside the period
    later = make_session(mine, starts_at=datetime(2026, 11, 3, 23, 30, tzinfo=NY))
    r = make_rupture(later, noticed=SECRET, hypothesis=SECRET, plan=SECRET, internal_signals_other=SECRET,
                     markers=["denial", "minimal_response"], repair_status="resolved")
    make_attempt(r, session=make_session(mine, starts_at=datetime(2026, 11, 10, 10, tzinfo=NY)),
                 outcome="resolved", note=SECRET)
    SupervisionNote.objects.create(rupture=r, supervisor=supervisor, comment=SECRET)
    theirs = make_client(other_therapist, code="C-SECRET-2")
    make_rupture(make_session(theirs, starts_at=datetime(2026, 11, 5, 9, tzinfo=NY)), kind="confrontation",
                 markers=["defends_self"])
    deleted = make_rupture(make_session(theirs, starts_at=datetime(2026, 11, 6, 9, tzinfo=NY)))
    deleted.soft_delete(by=other_therapist, reason="logged twice")
    return r


def rows_of(period=NOVEMBER, salt=None):
    out = io.BytesIO()
    copy_to(ruptures_extract(period, salt=salt), out.write)
    return out.getvalue(), list(csv.DictReader(io.StringIO(out.getvalue().decode())))


def test_it_writes_one_row_per_rupture_without_dates_names_or_text(clinic):
    content, rows = rows_of()
    assert list(rows[0]) == RUPTURE_COLUMNS
    assert len(rows) == 2  # October's is outside the period, the deleted one is gone
    text = content.decode()
    for leak in (SECRET, "Magdalena", "C-SECRET", "dlee", "apatel", "mokafor", "2026", "R-", "S-"):
        assert leak not in text
    mine = next(r for r in rows if r["kind"] == "withdrawal")
    # 3 November is 14 days after 20 October, counted in the clinic's time zone.
    assert (mine["day"], mine["days_to_repair"], mine["attempts"]) == ("14", "7", "1")
    assert (mine["markers"], mine["discussed_in_supervision"], mine["repair_status"]) == (
        "denial;minimal_response", "1", "resolved")
    assert {r["therapist"] for r in rows} == {"1", "2"}
    assert sorted(r["rupture"] for r in rows) == ["1", "2"]


def test_the_numbers_are_drawn_anew_for_each_extract(clinic, other_therapist):
    for _ in range(12):
        make_rupture(make_session(make_client(other_therapist), starts_at=datetime(2026, 11, 7, 9, tzinfo=NY)))
    draws = {tuple((r["client"], r["kind"]) for r in rows_of()[1]) for _ in range(4)}
    assert len(draws) > 1
    # ... and only the salt decides them: the same salt, the same file.
    assert rows_of(salt="fixed")[0] == rows_of(salt="fixed")[0]


def test_the_command_writes_the_files_and_logs_the_export(clinic, tmp_path):
    call_command("export_research", "--from", "2026-11-01", "--to", "2026-11-30", "-o", str(tmp_path))
    assert len(list(csv.DictReader(open(tmp_path / "ruptures.csv")))) == 2
    assert list(csv.DictReader(open(tmp_path / "checks.csv"))) == []  # no checks in this clinic
    event = AccessEvent.objects.get(what="research_extract")
    assert event.detail["via"] == "command" and event.detail["from"] == "2026-11-01"


def test_admins_download_it_as_a_zip_and_nobody_else_can(clinic, as_admin, supervisor):
    response = as_admin.post("/reports/research/", {"start": "2026-11-01", "end": "2026-11-30"})
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.namelist() == ["ruptures.csv", "checks.csv"]
    assert len(archive.read("ruptures.csv").decode().splitlines()) == 3
    refused = as_admin.post("/reports/research/", {"start": "2026-11-30", "end": "2026-11-01"})
    assert refused.status_code == 400 and "on or after the first day" in refused.content.decode()
    login(as_admin, supervisor)
    assert as_admin.post("/reports/research/", {"start": "2026-11-01", "end": "2026-11-30"}).status_code == 404


def test_checks_have_their_meanings_only_and_join_the_ruptures_on_the_drawn_numbers(clinic, shipped_instruments):
    session = clinic.session
    make_check(session, "therapist", tension="yes", intensity=3, worked_through=4, together=4)
    make_check(session, "client", tension="yes", intensity=4, worked_through=2, together=3,
               say_more=SECRET)
    files = {}
    for extract in extracts(NOVEMBER):
        out = io.BytesIO()
        copy_to(extract, out.write)
        files[extract.name] = out.getvalue().decode()
    checks = list(csv.DictReader(io.StringIO(files["checks.csv"])))
    assert list(checks[0]) == CHECK_COLUMNS
    assert SECRET not in files["checks.csv"] and "2026" not in files["checks.csv"]
    client_side = next(c for c in checks if c["respondent"] == "client")
    assert (client_side["tension"], client_side["together"], client_side["client_reported_rupture"]) == (
        "yes", "3", "1")
    assert client_side["instrument"] == "alliance_check" and client_side["day"] == "14"
    ruptures = list(csv.DictReader(io.StringIO(files["ruptures.csv"])))
    mine = next(r for r in ruptures if r["kind"] == "withdrawal")
    # One salt for the files of one extract: the same client under the same number.
    assert {c["client"] for c in checks} == {mine["client"]}
