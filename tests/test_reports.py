"""The alliance report: its definitions at their edges, suppression, formats and access."""

import csv
import io
import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pypdf
import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Role
from audit.models import AccessEvent
from reminders.models import Flag
from reports import services
from reports.formats import CSV_HEADER, csv_bytes, inert, pdf_bytes, xlsx_bytes
from reports.metrics import BY_SLUG, COUNT, METRICS, RATE
from reports.models import JobStatus, ReportJob
from reports.report import Filters, build, months_of, pseudonym
from supervision.measures import Period, measure
from tests.factories import make_attempt, make_client, make_rupture, make_session, make_user

pytestmark = pytest.mark.django_db

TZ = "America/New_York"
NOVEMBER = Period(date(2026, 11, 1), date(2026, 11, 30))
AS_OF = datetime(2026, 12, 1, 12, 0, tzinfo=ZoneInfo("UTC"))


@pytest.fixture
def clinic_tz(settings):
    settings.TIME_ZONE = TZ
    return ZoneInfo(TZ)


def at(tz, *args):
    return datetime(*args, tzinfo=tz)


def figures(viewer, filters=None, as_of=AS_OF):
    report = build(viewer, filters or Filters(period=NOVEMBER, min_cell=0), as_of=as_of)
    return report, {slug: c for slug, c in report.whole.cells[report.groups[0]].items()}


def csv_rows(content):
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))


# --- Definitions at their edges ------------------------------------------------------------

def test_a_session_counts_in_the_month_it_started_in_the_clinics_time_zone(clinic_tz, admin_user, therapist):
    client = make_client(therapist)
    # 23:30 on 31 October in New York is already 1 November in UTC: October's.
    october = make_session(client, starts_at=at(clinic_tz, 2026, 10, 31, 23, 30))
    make_rupture(october)
    first = make_session(client, starts_at=at(clinic_tz, 2026, 11, 1, 0, 0))
    last = make_session(client, starts_at=at(clinic_tz, 2026, 11, 30, 23, 59))
    make_rupture(last)
    # 00:00 on 1 December in New York: December's, although it is still 30 November in Los Angeles.
    make_session(client, starts_at=at(clinic_tz, 2026, 12, 1, 0, 0))

    _, cells = figures(admin_user)

    assert cells["held_sessions"].value == 2
    assert cells["ruptures"].value == 1
    assert cells["ruptures_per_held_session"].value == 0.5
    assert cells["logging_completeness"].value == 0.5  # `first` has neither a rupture nor a mark
    assert first.pk


def test_each_month_is_cut_to_the_period_and_the_months_add_up_to_the_whole(clinic_tz, admin_user, therapist):
    client = make_client(therapist)
    for day in (date(2026, 9, 14), date(2026, 9, 15), date(2026, 10, 2), date(2026, 10, 20)):
        make_rupture(make_session(client, starts_at=at(clinic_tz, day.year, day.month, day.day, 10)))
    period = Period(date(2026, 9, 15), date(2026, 10, 20))
    assert months_of(period) == [Period(date(2026, 9, 15), date(2026, 9, 30)),
                                 Period(date(2026, 10, 1), date(2026, 10, 20))]

    report = build(admin_user, Filters(period=period, min_cell=0), as_of=AS_OF)
    total = report.groups[0]
    whole = report.whole.cells[total]["ruptures"].value
    by_month = [pf.cells[total]["ruptures"].value for pf in report.months]
    assert (whole, by_month) == (3, [1, 2])


def test_deleted_records_are_left_out_of_every_figure(clinic_tz, admin_user, therapist):
    client = make_client(therapist)
    kept = make_session(client, starts_at=at(clinic_tz, 2026, 11, 10, 10))
    make_rupture(kept, repair_status="resolved")
    deleted_rupture = make_rupture(kept, kind="confrontation", markers=["defends_self"])
    make_attempt(deleted_rupture, outcome="resolved")
    deleted_rupture.soft_delete(by=therapist, reason="logged twice")
    gone = make_session(client, starts_at=at(clinic_tz, 2026, 11, 12, 10))
    make_rupture(gone)
    gone.soft_delete(by=therapist, reason="entered by mistake")
    other = make_client(therapist)
    make_rupture(make_session(other, starts_at=at(clinic_tz, 2026, 11, 14, 10)))
    other.soft_delete(by=therapist, reason="wrong clinic")

    _, cells = figures(admin_user)

    assert cells["held_sessions"].value == 1
    assert cells["ruptures"].value == 1
    assert cells["confrontation"].value == 0
    assert cells["resolved"].value == 1
    assert cells["repaired_same_session"].value == 0  # the resolving attempt was on the deleted one


def test_a_clients_history_moves_with_them_to_their_new_therapist(
    clinic_tz, admin_user, supervisor, therapist, other_therapist
):
    client = make_client(therapist)
    make_rupture(make_session(client, starts_at=at(clinic_tz, 2026, 11, 3, 10)))
    client.therapist = other_therapist
    client.save()
    make_session(client, starts_at=at(clinic_tz, 2026, 11, 17, 10))

    report, _ = figures(admin_user, Filters(period=NOVEMBER, by="therapist", min_cell=0))
    by_name = {g.name: report.whole.cells[g] for g in report.groups}
    assert by_name["apatel"]["held_sessions"].value == 2
    assert by_name["apatel"]["ruptures"].value == 1
    assert by_name["dlee"]["held_sessions"].value == 0
    # dlee's supervisor no longer reads this client's records, and no longer counts them.
    _, mine = figures(supervisor)
    assert (mine["held_sessions"].value, mine["ruptures"].value) == (0, 0)


def test_each_repair_status_is_counted_on_its_own_as_it_stands_now(clinic_tz, admin_user, therapist):
    client = make_client(therapist)
    session = make_session(client, starts_at=at(clinic_tz, 2026, 11, 2, 10))
    later = make_session(client, starts_at=at(clinic_tz, 2026, 11, 9, 10))
    for status in ("resolved", "partially_resolved", "unresolved", "attempted", "unaddressed", "unaddressed"):
        make_rupture(session, repair_status=status)
    same = make_rupture(session, repair_status="resolved")
    make_attempt(same, outcome="resolved")
    after_a_week = make_rupture(session, repair_status="partially_resolved")
    make_attempt(after_a_week, session=later, outcome="partially_resolved")

    _, cells = figures(admin_user)

    counts = {s: cells[s].value for s in ("resolved", "partially_resolved", "unresolved", "attempted", "unaddressed")}
    assert counts == {"resolved": 2, "partially_resolved": 2, "unresolved": 1, "attempted": 1, "unaddressed": 2}
    assert cells["repaired_same_session"].value == 1
    assert (cells["median_days_to_repair"].value, cells["median_days_to_repair"].n) == (3.5, 2)
    # All still open ones began on 2 November: more than 14 days before 1 December.
    assert cells["open_over_14_days"].value == 4


def test_flags_handled_before_their_session_and_escalations(admin_user, therapist):
    now = timezone.now()
    client = make_client(therapist)
    held = make_session(client, starts_at=now - timedelta(days=2))
    upcoming = make_session(client, starts_at=now + timedelta(days=1), status="scheduled")
    handled, ignored, changed = (make_rupture(held, intensity=i) for i in (3, 5, 2))
    for r in (handled, ignored, changed):
        Flag.objects.create(rupture=r, session=upcoming, raised_at=now - timedelta(hours=1),
                            escalated=r.intensity >= 4, carried_over=False)
    # Between the flag and the session: an attempt on one, a change of status on another.
    make_attempt(handled, session=held)
    changed.repair_status = "resolved"
    changed.save()
    today = timezone.localdate()
    period = Period(today - timedelta(days=3), today + timedelta(days=3))

    _, cells = figures(admin_user, Filters(period=period, min_cell=0), as_of=now + timedelta(days=2))
    _, before_the_session = figures(admin_user, Filters(period=period, min_cell=0), as_of=now)

    assert cells["flags_raised"].value == 3
    assert cells["escalations"].value == 1
    assert (cells["flags_handled_before_session"].value, cells["flags_handled_before_session"].n) == (2 / 3, 3)
    # Until the session begins, no flag can be judged.
    assert before_the_session["flags_handled_before_session"].n == 0


def test_the_dashboard_and_the_report_share_each_figure(clinic_tz, admin_user, therapist, supervisor):
    client = make_client(therapist)
    for day in range(2, 20, 3):
        make_rupture(make_session(client, starts_at=at(clinic_tz, 2026, 11, day, 10)))
    dashboard = measure([(therapist.pk, supervisor.pk)], NOVEMBER, "", ((),), as_of=AS_OF)[()][()]
    _, cells = figures(admin_user)
    assert cells["held_sessions"].value == dashboard.held_sessions
    assert cells["ruptures"].value == dashboard.ruptures
    assert cells["ruptures_per_held_session"].value == dashboard.per_session
    assert cells["resolved"].value + cells["partially_resolved"].value == dashboard.repaired


# --- Small numbers ----------------------------------------------------------------------------

@pytest.fixture
def small_clinic(clinic_tz, therapist):
    client = make_client(therapist)
    sessions = [make_session(client, starts_at=at(clinic_tz, 2026, 11, d, 10)) for d in range(2, 22)]
    for s in sessions[:3]:
        make_rupture(s)
    make_rupture(sessions[3], kind="confrontation", markers=["defends_self"], repair_status="resolved")
    return sessions


def test_small_counts_and_rates_built_on_them_are_suppressed(small_clinic, admin_user):
    report = build(admin_user, Filters(period=NOVEMBER, min_cell=5), as_of=AS_OF)
    rows = {r["metric"]: r for r in csv_rows(csv_bytes(report)) if r["period_end"] == "2026-11-30"}

    assert (rows["held_sessions"]["value"], rows["held_sessions"]["n"]) == ("20", "20")
    assert (rows["ruptures"]["value"], rows["ruptures"]["n"]) == ("<5", "20")
    # Secondary: 4 of 20 would give the hidden count back.
    assert rows["ruptures_per_held_session"]["value"] == "<5"
    assert (rows["withdrawal"]["value"], rows["withdrawal"]["n"]) == ("<5", "<5")
    assert rows["unaddressed"]["value"] == "<5"
    assert (rows["confrontation"]["value"], rows["therapist_side"]["value"]) == ("<5", "0")
    # A median of fewer than five ruptures is hidden; none dated here, so it is simply empty.
    assert rows["median_days_to_repair"]["value"] == ""
    assert "<5" not in {r["value"] for r in rows.values() if r["value"] in ("1", "2", "3", "4")}


@pytest.fixture
def seven_ruptures(clinic_tz, therapist):
    """Twelve held sessions and seven ruptures: a count that a threshold of 10 hides."""
    client = make_client(therapist)
    sessions = [make_session(client, starts_at=at(clinic_tz, 2026, 11, d, 10)) for d in range(2, 14)]
    for s in sessions[:6]:
        make_rupture(s)
    make_rupture(sessions[6], kind="confrontation", markers=["defends_self"])
    return sessions


def test_the_marker_names_the_threshold_in_force_in_every_format(seven_ruptures, as_admin, admin_user, settings):
    settings.REPORT_MIN_CELL = 10
    report = build(admin_user, Filters(period=NOVEMBER, min_cell=10), as_of=AS_OF)
    content = csv_bytes(report)
    rows = {r["metric"]: r for r in csv_rows(content) if r["period_end"] == "2026-11-30"}
    assert (rows["held_sessions"]["value"], rows["held_sessions"]["n"]) == ("12", "12")
    # Seven is below 10, and not below 5: it is "<10", never "<5".
    assert (rows["ruptures"]["value"], rows["ruptures"]["n"]) == ("<10", "12")
    assert (rows["withdrawal"]["value"], rows["withdrawal"]["n"]) == ("<10", "<10")
    assert rows["ruptures_per_held_session"]["value"] == "<10"
    assert b"<5" not in content

    book = openpyxl.load_workbook(io.BytesIO(xlsx_bytes(report)), read_only=True)
    summary = list(book["Summary"].iter_rows(values_only=True))
    totals = dict(zip(summary[0], summary[1], strict=True))
    assert (totals["held_sessions"], totals["ruptures"], totals["withdrawal_n"]) == (12, "<10", "<10")
    assert not any("<5" in str(v) for sheet in book for row in sheet.iter_rows(values_only=True) for v in row)

    text = pdf_text(pdf_bytes(report, clinic="Test clinic"))
    assert "<10 (n=12)" in text and "<5" not in text
    assert "any count from 1 to 9 is shown as <10" in text

    page = as_admin.get("/reports/alliance/?period=month&month=2026-11").content.decode()
    assert page.split('data-metric="ruptures">')[1].startswith("&lt;10 <span")
    assert "&lt;5" not in page
    assert "Any count from 1 to 9 is shown as &lt;10" in page


def test_the_command_marks_hidden_counts_with_its_own_threshold(seven_ruptures, capfdbinary):
    call_command("alliance_report", "--from", "2026-11-01", "--to", "2026-11-30", "--min-cell", "10",
                 "--as-of", "2026-12-01T12:00+00:00")
    rows = {r["metric"]: r for r in csv_rows(capfdbinary.readouterr().out) if r["period_end"] == "2026-11-30"}
    assert rows["ruptures"]["value"] == "<10"
    assert rows["confrontation"]["value"] == "<10"


# --- Secondary suppression: nothing hidden comes back by subtraction ----------------------------

def readable(report):
    """What a reader of the CSV knows of each count, {(start, end, group, count): value or
    None}: a count is known where any figure shows it, as itself, as an n, or as a share's
    numerator (the share times its n)."""
    known = {}
    for r in csv_rows(csv_bytes(report)):
        metric = BY_SLUG[r["metric"]]
        at = (r["period_start"], r["period_end"], r["group"])
        n = int(r["n"]) if r["n"].isdigit() else None
        for name in filter(None, (metric.n, metric.part)):
            known.setdefault((*at, name), None)
        if n is not None:
            known[(*at, metric.n)] = n
        if metric.kind == COUNT and r["value"].isdigit():
            known[(*at, metric.part)] = int(r["value"])
        if metric.kind == RATE and n is not None and r["value"].replace(".", "").isdigit():
            known[(*at, metric.part)] = round(float(r["value"]) * n)
        if metric.kind == RATE and n == 0:
            known[(*at, metric.part)] = 0
    return known


def report_sums(report, names):
    """The sums a reader can subtract along, as (total, parts) of readable() keys: written out
    here from what the report shows, not taken from the code under test."""
    periods = [(pf.period.start.isoformat(), pf.period.end.isoformat()) for pf in report.periods]
    groups = [g.name for g in report.groups]
    for name in names:
        if len(groups) > 1:
            for p in periods:  # the first row is the sum of the others
                yield (*p, groups[0], name), [(*p, g, name) for g in groups[1:]]
        for g in groups:  # the whole period is the sum of its months
            yield (*periods[0], g, name), [(*p, g, name) for p in periods[1:]]
    for p in periods:  # the kinds, the repair statuses and the endings make up their n
        for g in groups:
            yield (*p, g, "ruptures"), [(*p, g, kind) for kind in ("withdrawal", "confrontation")]
            yield (*p, g, "ruptures"), [(*p, g, status) for status in (
                "resolved", "partially_resolved", "unresolved", "attempted", "unaddressed")]
            yield (*p, g, "discharged"), [(*p, g, f"ended_{e}") for e in ("planned", "dropout", "transfer", "other")]


def given_back(report, truth):
    """What a reader could work out that suppression meant to hide, with the true values from
    `truth` (the same report, no suppression): a small count, by subtracting along the sums
    again and again as each gives a count back, or a small total of the counts still unknown
    along a sum."""
    seen, true = readable(report), readable(truth)
    assert set(seen) == set(true)
    m = report.filters.min_cell
    sums = list(report_sums(report, sorted({k[3] for k in true})))
    for total, parts in sums:
        assert true[total] == sum(true[p] for p in parts), (total, parts)  # the sum holds
    known = {k for k, v in seen.items() if v is not None}
    assert {k: seen[k] for k in known} == {k: true[k] for k in known}
    more = True
    while more:
        more = False
        for total, parts in sums:
            unknown = [k for k in (total, *parts) if k not in known]
            if len(unknown) == 1:
                known.add(unknown[0])
                more = True
    leaks = [k for k in known if 0 < true[k] < m]
    for total, parts in sums:
        if total in known:
            rest = sum(true[p] for p in parts if p not in known)
            if 0 < rest < m:
                leaks.append((total, rest))
    return leaks


@pytest.fixture
def kchen_clinic(clinic_tz, therapist, other_therapist):
    """Unresolved ruptures: apatel 8, dlee 3, kchen 6 (clinic 17); each also has six resolved,
    and dlee two attempted, kchen three (so that no row gives a hidden count back on its own)."""
    kchen = make_user(Role.THERAPIST, username="kchen", display_name="K. Chen")
    for person, unresolved, attempted in ((other_therapist, 8, 0), (therapist, 3, 2), (kchen, 6, 3)):
        client = make_client(person)
        sessions = [make_session(client, starts_at=at(clinic_tz, 2026, 11, d, 10)) for d in range(2, 14)]
        statuses = ["unresolved"] * unresolved + ["resolved"] * 6 + ["attempted"] * attempted
        for i, status in enumerate(statuses):
            make_rupture(sessions[i % len(sessions)], repair_status=status)
    return kchen


def test_a_count_that_subtraction_would_give_back_is_hidden_with_another(kchen_clinic, as_admin, admin_user):
    report = build(admin_user, Filters(period=NOVEMBER, by="therapist", min_cell=5), as_of=AS_OF)
    truth = build(admin_user, Filters(period=NOVEMBER, by="therapist", min_cell=0), as_of=AS_OF)
    whole = {(r["group"], r["metric"]): r for r in csv_rows(csv_bytes(report))
             if (r["period_start"], r["period_end"]) == ("2026-11-01", "2026-11-30")}
    unresolved = {g: whole[(g, "unresolved")]["value"] for g in ("clinic", "apatel", "dlee", "kchen")}
    # dlee's 3 would be 17 - 8 - 6: kchen's 6, the smallest other, is hidden too; the total stays.
    assert unresolved == {"clinic": "17", "apatel": "8", "dlee": "<5", "kchen": "x"}
    assert whole[("kchen", "resolved")]["value"] == "6"  # the rest of kchen's row is shown
    assert whole[("kchen", "ruptures")]["value"] == "15"
    assert given_back(report, truth) == []

    # No format gives kchen's or dlee's count: the page, the spreadsheet and the PDF say the same.
    page = as_admin.get("/reports/alliance/?period=month&month=2026-11&by=therapist").content.decode()
    cells = [c.split(" <span")[0] for c in page.split('data-metric="unresolved">')[1:]]
    assert cells == ["17", "8", "&lt;5", "x"]
    book = openpyxl.load_workbook(io.BytesIO(xlsx_bytes(report)), read_only=True)
    sheet = list(book["By therapist"].iter_rows(values_only=True))
    column = sheet[0].index("unresolved")
    assert {r[3]: r[column] for r in sheet[1:] if r[1] == "2026-11-30" and r[0] == "2026-11-01"} == {
        "apatel": 8, "dlee": "<5", "kchen": "x"}
    summary = list(book["Summary"].iter_rows(values_only=True))
    assert dict(zip(summary[0], summary[1], strict=True))["unresolved"] == 17
    text = pdf_text(pdf_bytes(report, clinic="Test clinic"))
    # kchen's confrontation, therapist-side, resolved, partially resolved, unresolved.
    assert "kchen\n0 (n=15)\n0 (n=15)\n6 (n=15)\n0 (n=15)\nx (n=15)\n" in text
    assert "dlee\n0 (n=11)\n0 (n=11)\n6 (n=11)\n0 (n=11)\n<5 (n=11)\n" in text
    assert "the smallest other count that adds up to the same total is hidden as well" in " ".join(text.split())
    assert "shown as x because it may be of any size" in page


def test_a_month_that_subtraction_would_give_back_is_hidden_with_another(clinic_tz, admin_user, therapist):
    client = make_client(therapist)
    for month, count in ((9, 7), (10, 9), (11, 3)):
        for d in range(count):
            make_rupture(make_session(client, starts_at=at(clinic_tz, 2026, month, 2 + d, 10)))
    period = Period(date(2026, 9, 1), date(2026, 11, 30))
    report = build(admin_user, Filters(period=period, min_cell=5), as_of=AS_OF)
    truth = build(admin_user, Filters(period=period, min_cell=0), as_of=AS_OF)
    ruptures = [r["value"] for r in csv_rows(csv_bytes(report)) if r["metric"] == "ruptures"]
    # The whole period (19) less September and October would give November's 3: September goes too.
    assert ruptures == ["19", "x", "9", "<5"]
    assert given_back(report, truth) == []


def test_no_hidden_count_comes_back_by_subtraction_on_a_varied_clinic(clinic_tz, admin_user, therapist,
                                                                      other_therapist):
    rng = random.Random(13)
    people = [therapist, other_therapist, *(make_user(Role.THERAPIST, username=f"t{i}") for i in range(3))]
    for person in people:
        client = make_client(person)
        for month in (10, 11):
            for d in range(rng.randint(0, 9)):
                session = make_session(client, starts_at=at(clinic_tz, 2026, month, 2 + d, 10))
                for _ in range(rng.choice((0, 1, 1, 2))):
                    make_rupture(session, kind=rng.choice(("withdrawal", "withdrawal", "confrontation")),
                                 markers=["defends_self"] if rng.random() < 0.3 else ["minimal_response"],
                                 repair_status=rng.choice(("resolved", "unresolved", "attempted", "unaddressed",
                                                           "partially_resolved")))
        for _ in range(rng.randint(0, 3)):
            make_client(person, status="discharged", ending=rng.choice(("planned", "dropout", "other")),
                        discharged_at=at(clinic_tz, 2026, rng.choice((10, 11)), rng.randint(1, 28), 12))
    period = Period(date(2026, 10, 1), date(2026, 11, 30))
    for by in ("clinic", "therapist"):
        for min_cell in (3, 5, 10):
            report = build(admin_user, Filters(period=period, by=by, min_cell=min_cell), as_of=AS_OF)
            truth = build(admin_user, Filters(period=period, by=by, min_cell=0), as_of=AS_OF)
            assert given_back(report, truth) == [], (by, min_cell)
            assert csv_bytes(report) == csv_bytes(build(admin_user, report.filters, as_of=AS_OF))
            # The totals stay: the clinic's whole-period counts are hidden only when small, but
            # for those that make up another (the kinds, the statuses and the endings).
            clinic = {r["metric"]: r["value"] for r in csv_rows(csv_bytes(report)) if r["group"] == "clinic"
                      and (r["period_start"], r["period_end"]) == ("2026-10-01", "2026-11-30")}
            parts = {"withdrawal", "confrontation", "resolved", "partially_resolved", "unresolved", "attempted",
                     "unaddressed", "ended_planned", "ended_dropout", "ended_transfer", "ended_other"}
            assert "x" not in {clinic[m.slug] for m in METRICS if m.kind == COUNT and m.slug not in parts}


def test_suppression_can_be_turned_off_by_the_operator(small_clinic, admin_user):
    report = build(admin_user, Filters(period=NOVEMBER, min_cell=0), as_of=AS_OF)
    rows = {r["metric"]: r for r in csv_rows(csv_bytes(report)) if r["period_end"] == "2026-11-30"}
    assert (rows["ruptures"]["value"], rows["ruptures_per_held_session"]["value"]) == ("4", "0.2000")
    assert (rows["withdrawal"]["value"], rows["withdrawal"]["n"]) == ("3", "4")


def test_the_page_shows_suppressed_cells_too(small_clinic, as_admin):
    page = as_admin.get("/reports/alliance/?period=month&month=2026-11").content.decode()
    assert "&lt;5" in page
    assert "More ruptures logged often means more noticed" in page
    assert "How these are counted" in page


# --- Formats -----------------------------------------------------------------------------------

@pytest.fixture
def busy_clinic(clinic_tz, supervisor, therapist, other_therapist, other_supervisor):
    for person, count in ((therapist, 12), (other_therapist, 9)):
        client = make_client(person)
        for i in range(count):
            s = make_session(client, starts_at=at(clinic_tz, 2026, 10 + i % 2, 3 + i, 10))
            if i % 2 == 0:
                make_rupture(s, repair_status="resolved" if i % 4 == 0 else "unaddressed")
    return therapist, other_therapist


def test_the_csv_is_tidy_whole_period_first_then_each_month(busy_clinic, admin_user):
    period = Period(date(2026, 10, 1), date(2026, 11, 30))
    content = csv_bytes(build(admin_user, Filters(period=period, by="therapist"), as_of=AS_OF))
    lines = content.decode("utf-8").splitlines()
    assert lines[0] == ",".join(CSV_HEADER)
    rows = csv_rows(content)
    order = []
    for r in rows:
        key = (r["period_start"], r["period_end"])
        if key not in order:
            order.append(key)
    assert order == [("2026-10-01", "2026-11-30"), ("2026-10-01", "2026-10-31"), ("2026-11-01", "2026-11-30")]
    assert len(rows) == 3 * 3 * len(METRICS)  # periods x (clinic, apatel, dlee) x metrics
    assert [r["group"] for r in rows[:: len(METRICS)][:3]] == ["clinic", "apatel", "dlee"]
    assert {r["group_type"] for r in rows} == {"clinic", "therapist"}
    rates = [r["value"] for r in rows if r["metric"] == "logging_completeness" and r["value"] not in ("", "<5", "x")]
    assert rates and all(len(v.split(".")[1]) == 4 for v in rates)


def test_the_csv_makes_formula_cells_inert(clinic_tz, admin_user):
    for name in ("=cmd", "+sum", "-x", "@at"):
        make_rupture(make_session(make_client(make_user(Role.THERAPIST, username=name)),
                                  starts_at=at(clinic_tz, 2026, 11, 5, 10)))
    rows = csv_rows(csv_bytes(build(admin_user, Filters(period=NOVEMBER, by="therapist"), as_of=AS_OF)))
    assert {r["group"] for r in rows} == {"clinic", "'=cmd", "'+sum", "'-x", "'@at"}
    assert inert("plain") == "plain"


def test_pseudonyms_are_stable_and_hide_usernames_in_every_format(busy_clinic, admin_user):
    filters = Filters(period=NOVEMBER, by="therapist", pseudonymise=True)
    report = build(admin_user, filters, as_of=AS_OF)
    assert [g.name for g in report.groups[1:]] == sorted([pseudonym("dlee"), pseudonym("apatel")])
    assert pseudonym("dlee") == pseudonym("dlee") != pseudonym("apatel")
    for content in (csv_bytes(report), pdf_text(pdf_bytes(report, clinic="Test clinic")).encode()):
        assert b"dlee" not in content and b"apatel" not in content
        assert pseudonym("dlee").encode() in content


def test_the_same_data_and_filters_give_the_same_bytes(busy_clinic, admin_user):
    filters = Filters(period=Period(date(2026, 10, 1), date(2026, 11, 30)), by="therapist")
    first, again = (build(admin_user, filters, as_of=AS_OF) for _ in range(2))
    assert csv_bytes(first) == csv_bytes(again)
    assert xlsx_bytes(first) == xlsx_bytes(again)
    assert pdf_bytes(first, clinic="Test clinic") == pdf_bytes(again, clinic="Test clinic")


def pdf_text(content):
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(content)).pages)


def test_the_page_the_csv_the_xlsx_and_the_pdf_agree(busy_clinic, as_admin, admin_user):
    query = "period=custom&start=2026-10-01&end=2026-11-30&by=therapist"
    page = as_admin.get(f"/reports/alliance/?{query}").content.decode()
    rows = csv_rows(as_admin.get(f"/reports/alliance/report.csv?{query}").content)
    book = openpyxl.load_workbook(io.BytesIO(as_admin.get(f"/reports/alliance/report.xlsx?{query}").content),
                                  read_only=True)
    report = build(admin_user, Filters(period=Period(date(2026, 10, 1), date(2026, 11, 30)), by="therapist"),
                   as_of=services.report_time())
    text = pdf_text(pdf_bytes(report, clinic="Test clinic"))

    whole = {r["metric"]: r for r in rows if r["group"] == "clinic" and r["period_end"] == "2026-11-30"
             and r["period_start"] == "2026-10-01"}
    assert (whole["held_sessions"]["value"], whole["ruptures"]["value"]) == ("21", "11")
    assert book.sheetnames == ["Summary", "By month", "By supervisor", "By therapist", "Definitions"]
    summary = list(book["Summary"].iter_rows(values_only=True))
    head = summary[0]
    totals = dict(zip(head, summary[1], strict=True))
    assert totals["held_sessions"] == 21 and totals["ruptures"] == 11
    assert isinstance(totals["logging_completeness"], float)
    assert abs(totals["logging_completeness"] - float(whole["logging_completeness"]["value"])) < 1e-4
    by_therapist = list(book["By therapist"].iter_rows(values_only=True))
    sheet_held = sum(r[head.index("held_sessions")] for r in by_therapist[1:] if r[0] == "2026-10-01"
                     and r[1] == "2026-11-30")
    assert sheet_held == 21
    months = list(book["By month"].iter_rows(values_only=True))[1:]
    assert sum(r[head.index("ruptures")] for r in months) == 11
    # The page's first row is the clinic's total.
    assert page.split('data-metric="held_sessions">')[1].startswith("21 <span")
    assert page.split('data-metric="ruptures">')[1].startswith("11 <span")
    assert "21 (n=21)" in text and "11 (n=21)" in text
    assert "Page 3" in text and "How these are counted" in text


# --- Access --------------------------------------------------------------------------------------

def test_supervisors_see_only_their_current_supervisees(busy_clinic, as_supervisor, supervisor):
    response = as_supervisor.get("/reports/alliance/report.csv?period=custom&start=2026-10-01&end=2026-11-30"
                                 "&by=therapist")
    rows = csv_rows(response.content)
    assert {(r["group_type"], r["group"]) for r in rows} == {("supervisor", "mokafor"), ("therapist", "dlee")}
    total = next(r for r in rows if r["group"] == "mokafor" and r["metric"] == "held_sessions")
    assert total["value"] == "12"
    # No grouping by supervisor for a supervisor: a message beside the field, nothing shown.
    refused = as_supervisor.get("/reports/alliance/?by=supervisor")
    assert refused.status_code == 400
    assert "Choose clinic, supervisor or therapist" in refused.content.decode()


def test_each_view_and_export_is_in_the_access_log_with_its_filters(busy_clinic, as_admin, admin_user):
    as_admin.get("/reports/alliance/?period=month&month=2026-11&kind=withdrawal")
    as_admin.get("/reports/alliance/report.csv?period=quarter&quarter=2026-Q4&by=therapist&pseudonymise=on")
    events = list(AccessEvent.objects.filter(what="alliance_report").order_by("pk"))
    assert [(e.user, e.action) for e in events] == [(admin_user, "view"), (admin_user, "export")]
    assert events[0].detail["kind"] == "withdrawal" and events[0].detail["from"] == "2026-11-01"
    assert events[1].detail == {"from": "2026-10-01", "to": "2026-12-31", "by": "therapist", "kind": "any",
                                "pseudonymise_therapists": True, "min_cell": 5, "format": "csv"}


@pytest.mark.parametrize("query, field, message", [
    ("period=month&month=2026-13", "month", "Enter a month as YYYY-MM"),
    ("period=quarter&quarter=Q5", "quarter", "Enter a quarter as YYYY-Qn"),
    ("period=custom&start=2026-11-05&end=2026-11-01", "end", "on or after the first day"),
    ("period=custom&start=2020-01-01&end=2026-11-01", "end", "at most 24 calendar months"),
    ("period=custom&start=1900-01-01&end=1900-02-01", "start", "Choose dates from"),
    ("period=custom&start=%00", "start", "Enter a date"),
    ("kind=%3Cscript%3E", "kind", "Choose withdrawal"),
])
def test_bad_filters_get_a_message_beside_the_field(as_admin, query, field, message):
    response = as_admin.get(f"/reports/alliance/?{query}")
    assert response.status_code == 400
    page = response.content.decode()
    errors = page.split(f'id="id_{field}_error"')[1].split("</div>")[0]
    assert message in errors
    assert as_admin.get(f"/reports/alliance/report.csv?{query}").status_code == 400


def test_the_page_lists_therapists_by_name_not_by_rupture_rate(busy_clinic, as_admin):
    page = as_admin.get("/reports/alliance/?period=month&month=2026-11&by=therapist").content.decode()
    assert page.index("Asha Patel") < page.index("Dana Lee")
    assert "sort=" not in page


# --- The PDF job ----------------------------------------------------------------------------

def test_a_pdf_is_made_for_its_requester_and_for_nobody_else(
    busy_clinic, as_admin, admin_user, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_admin.post("/reports/alliance/pdf", {"period": "month", "month": "2026-11", "by": "therapist"})
    job = ReportJob.objects.get()
    assert response["Location"] == f"/reports/jobs/{job.pk}/"
    assert job.status == JobStatus.DONE  # tasks run in-process in the tests
    status = as_admin.get(f"/reports/jobs/{job.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert "Download the PDF" in status and "every 2s" not in status
    download = as_admin.get(f"/reports/jobs/{job.pk}/download")
    assert download["Content-Type"] == "application/pdf"
    assert b"".join(download).startswith(b"%PDF")
    assert "Sessions held" in pdf_text(b"".join(download))

    other_admin = make_user(Role.ADMIN, username="admin2")
    client.force_login(other_admin)
    assert client.get(f"/reports/jobs/{job.pk}/").status_code == 404
    assert client.get(f"/reports/jobs/{job.pk}/download").status_code == 404


def test_a_pending_job_page_polls_and_works_without_javascript(as_admin, admin_user):
    job = ReportJob.objects.create(requested_by=admin_user, filters=Filters(period=NOVEMBER).as_dict(),
                                   as_of=AS_OF)
    page = as_admin.get(f"/reports/jobs/{job.pk}/").content.decode()
    assert 'hx-trigger="every 2s"' in page
    assert f'href="/reports/jobs/{job.pk}/">check again' in page
    assert as_admin.get(f"/reports/jobs/{job.pk}/download")["Location"] == f"/reports/jobs/{job.pk}/"


def test_files_older_than_seven_days_are_removed(admin_user):
    now = timezone.now()
    old = ReportJob.objects.create(requested_by=admin_user, filters={}, as_of=AS_OF,
                                   requested_at=now - timedelta(days=7, minutes=1))
    kept = ReportJob.objects.create(requested_by=admin_user, filters={}, as_of=AS_OF,
                                    requested_at=now - timedelta(days=6, hours=23))
    from reports.tasks import remove_old

    assert remove_old.delay().get() == 1
    assert list(ReportJob.objects.values_list("pk", flat=True)) == [kept.pk]
    assert old.pk


def test_the_monthly_report_mails_each_admin_a_link_and_no_figures(busy_clinic, admin_user, settings):
    settings.SITE_URL = "https://clinic.example"
    from reports.tasks import monthly

    monthly.delay(today_iso="2026-12-01").get()
    monthly.delay(today_iso="2026-12-01").get()  # beat twice: still one report, one e-mail

    job = ReportJob.objects.get()
    assert (job.requested_by, job.status, job.filters["from"], job.filters["to"]) == (
        admin_user, JobStatus.DONE, "2026-11-01", "2026-11-30")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [admin_user.email]
    assert f"https://clinic.example/reports/jobs/{job.pk}/" in message.body
    assert not any(ch.isdigit() for ch in message.body.replace(str(job.pk), "").replace("7 days", ""))


def test_the_job_refuses_a_requester_who_lost_the_role(admin_user):
    job = services.request_pdf(user=admin_user, filters=Filters(period=NOVEMBER))
    ReportJob.objects.filter(pk=job.pk).update(status=JobStatus.PENDING)
    admin_user.role = Role.THERAPIST
    admin_user.save()
    assert services.make_pdf(job_id=job.pk) == "failed"
    assert ReportJob.objects.get(pk=job.pk).status == JobStatus.FAILED


# --- The command ------------------------------------------------------------------------------------

def test_the_command_writes_the_csv_to_stdout_and_other_formats_to_a_file(busy_clinic, tmp_path, capfdbinary):
    call_command("alliance_report", "--from", "2026-11-01", "--to", "2026-11-30", "--by", "therapist",
                 "--min-cell", "0", "--as-of", "2026-12-01T12:00+00:00")
    out = capfdbinary.readouterr().out
    rows = csv_rows(out)
    assert {r["group"] for r in rows} == {"clinic", "dlee", "apatel"}
    call_command("alliance_report", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "xlsx",
                 "-o", str(tmp_path / "r.xlsx"), "--pseudonymise-therapists", "--by", "therapist")
    names = [r[3] for r in openpyxl.load_workbook(tmp_path / "r.xlsx")["By therapist"].iter_rows(
        min_row=2, values_only=True)]
    assert sorted(set(names)) == sorted([pseudonym("dlee"), pseudonym("apatel")])
    assert AccessEvent.objects.filter(what="alliance_report", detail__via="command").count() == 2


@pytest.mark.parametrize("args, message", [
    (["--from", "2026-11-31", "--to", "2026-12-01"], "not a date"),
    (["--from", "2026-11-05", "--to", "2026-11-01"], "on or after"),
    (["--from", "2026-11-01", "--to", "2026-11-30", "--format", "pdf"], "needs -o FILE"),
    (["--from", "2026-11-01", "--to", "2026-11-30", "--min-cell", "-1"], "0 or more"),
])
def test_the_command_refuses_bad_arguments(db, args, message):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=message):
        call_command("alliance_report", *args)


def test_the_page_costs_the_same_queries_whatever_the_size_of_the_clinic(
    busy_clinic, as_admin, django_assert_num_queries, other_therapist, clinic_tz
):
    url = "/reports/alliance/?period=custom&start=2026-10-01&end=2026-11-30&by=therapist"
    as_admin.get(url)  # warm: the session and the user are loaded the same way each time
    # Session and user (2), the team and its supervisors (2), per period (3 of them): the
    # measures, the clients and their open flags, the checks, the flags and the endings (6
    # each) and the access log entry (1). The session is not written again: its idle timer
    # moves once a minute.
    with django_assert_num_queries(23):
        as_admin.get(url)
    more = make_client(other_therapist)
    for d in range(1, 20):
        make_rupture(make_session(more, starts_at=at(clinic_tz, 2026, 11, d, 9)))
        make_client(other_therapist, status="discharged", ending="dropout",
                    discharged_at=at(clinic_tz, 2026, 11, d, 17))
    with django_assert_num_queries(23):
        as_admin.get(url)


def test_an_htmx_filter_change_refreshes_the_messages_beside_the_fields(as_admin):
    bad = as_admin.get("/reports/alliance/?period=custom&start=2026-11-05", headers={"HX-Request": "true"})
    text = bad.content.decode()
    assert bad.status_code == 200  # htmx swaps only successful answers
    assert 'id="id_end_error" aria-live="polite" hx-swap-oob="true"' in text
    assert "Enter the last day of the custom period." in text
    assert "Nothing to show until the filters marked above are corrected." in text


def test_the_csv_and_xlsx_do_not_change_with_the_time_they_are_made(busy_clinic, admin_user):
    filters = Filters(period=NOVEMBER, by="therapist")
    early = build(admin_user, filters, as_of=AS_OF)
    later = build(admin_user, filters, as_of=AS_OF + timedelta(minutes=7))
    assert csv_bytes(early) == csv_bytes(later)
    assert xlsx_bytes(early) == xlsx_bytes(later)
