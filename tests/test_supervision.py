"""The supervision dashboards: measures, filters, sorting, access, charts and notes."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role, SupervisionLink
from ruptures.models import RuptureEvent
from sessions.models import ClientStatus, SessionStatus, TherapySession
from supervision.measures import Period, measure
from supervision.models import NOTE_MAX_LENGTH, SupervisionNote
from tests.conftest import login
from tests.factories import (
    make_attempt,
    make_client,
    make_rupture,
    make_session,
    make_user,
    supervise,
)

DASHBOARD = "/supervision/"


def caseload_url(user):
    return f"/supervision/{user.username}/"


def discuss_url(rupture):
    return f"/supervision/ruptures/{rupture.pk}/discuss"


def rows_by_name(response):
    return {row.name: row for row in response.context["rows"]}


# --- A small hand-made caseload whose every number is worked out below ----------------
#
# dlee (supervised by mokafor), last 4 weeks:
#   C-0001 active: held sessions 21, 14 and 7 days ago (a cancelled one 3 days ago, and
#          one held 60 days ago, outside the period)
#          r1 (21d) withdrawal, client, minimal_response; resolved by an attempt 14d ago;
#             discussed in supervision
#          r2 (14d) confrontation, client; unaddressed
#          r3 (7d)  withdrawal, therapist-side, minimal_response; partially resolved the
#             same session
#          r_old (60d) withdrawal, minimal_response; unresolved (open, outside the period)
#   C-0002 active: held 20 and 13 days ago
#          r4 (20d) withdrawal, topic_shift; resolved without any attempt recorded
#          r5 (13d) withdrawal, deferential_appeasing; attempted
#   C-0003 discharged, nothing at all
#
# So: 2 active clients, 5 held sessions, 5 ruptures (1.0 per session), 4 withdrawal and
# 1 confrontation, 4 client-side and 1 therapist-side, 3 repaired (60%), days to repair
# 7 and 0 (r4 has no attempt) so a median of 3.5, 3 open now, 1 client with a recurring
# pattern (minimal_response in 3 of C-0001's last 5 held sessions), 4 not yet discussed.


@pytest.fixture
def caseload(therapist, supervisor):
    c1 = make_client(therapist, code="C-0001")
    c2 = make_client(therapist, code="C-0002")
    make_client(therapist, code="C-0003", status=ClientStatus.DISCHARGED)
    s = {d: make_session(c1, days_ago=d) for d in (60, 21, 14, 7)}
    make_session(c1, days_ago=3, status=SessionStatus.CANCELLED)
    t = {d: make_session(c2, days_ago=d) for d in (20, 13)}
    r1 = make_rupture(s[21], markers=["minimal_response"], repair_status="resolved")
    make_attempt(r1, s[14], outcome="resolved")
    r2 = make_rupture(s[14], kind="confrontation", markers=["complaint_about_progress"])
    r3 = make_rupture(
        s[7], actor="therapist", markers=["minimal_response"], repair_status="partially_resolved"
    )
    make_attempt(r3, s[7], outcome="partially_resolved")
    r_old = make_rupture(s[60], markers=["minimal_response"], repair_status="unresolved")
    make_attempt(r_old, s[60], outcome="unresolved")
    r4 = make_rupture(t[20], markers=["topic_shift"], repair_status="resolved")
    r5 = make_rupture(t[13], markers=["deferential_appeasing"], repair_status="attempted")
    make_attempt(r5, t[13], outcome="attempted")
    SupervisionNote.objects.create(
        rupture=r1, supervisor=supervisor, comment="Talked about pacing."
    )
    return {
        "clients": (c1, c2),
        "ruptures": {"r1": r1, "r2": r2, "r3": r3, "r4": r4, "r5": r5, "r_old": r_old},
    }


@pytest.fixture
def second_supervisee(supervisor):
    """kchen, also supervised by mokafor: one client, one open rupture 5 days ago."""
    kchen = make_user(Role.THERAPIST, username="kchen", display_name="Kai Chen")
    supervise(supervisor, kchen)
    client = make_client(kchen, code="K-0001")
    make_rupture(make_session(client, days_ago=5), markers=["denial"])
    return kchen


def last_weeks(weeks):
    today = timezone.localdate()
    return Period(today - timedelta(weeks=weeks) + timedelta(days=1), today)


# --- The arithmetic --------------------------------------------------------------------


def test_it_computes_every_measure_of_a_supervisee(therapist, caseload):
    m = measure([(therapist.pk, None)], last_weeks(4), "", (("therapist_id",),))[("therapist_id",)][
        (therapist.pk,)
    ]
    assert (m.active_clients, m.held_sessions, m.ruptures) == (2, 5, 5)
    assert m.per_session == 1.0
    assert (m.withdrawal, m.confrontation) == (4, 1)
    assert (m.client_side, m.therapist_side) == (4, 1)
    assert (m.repaired, m.repair_rate) == (3, 0.6)
    assert m.median_days == 3.5
    assert m.open_now == 3
    assert m.recurring_clients == 1
    assert m.undiscussed == 4


def test_it_computes_every_measure_client_by_client(therapist, caseload):
    c1, c2 = caseload["clients"]
    by_client = measure([(therapist.pk, None)], last_weeks(4), "", (("client_id",),))[
        ("client_id",)
    ]
    one, two = by_client[(c1.pk,)], by_client[(c2.pk,)]
    assert (one.held_sessions, one.ruptures, one.withdrawal, one.confrontation) == (3, 3, 2, 1)
    assert (one.client_side, one.therapist_side, one.repaired, one.median_days) == (2, 1, 2, 3.5)
    assert (one.open_now, one.undiscussed) == (2, 2)
    assert one.recurring_markers == {"minimal_response": 3}
    assert (two.held_sessions, two.ruptures, two.repaired, two.median_days) == (2, 2, 1, None)
    assert (two.open_now, two.undiscussed, two.recurring_markers) == (1, 2, {})


def test_it_narrows_every_rupture_count_to_the_chosen_kind(therapist, caseload):
    m = measure([(therapist.pk, None)], last_weeks(4), "withdrawal", ((),))[()][()]
    assert (m.held_sessions, m.ruptures, m.per_session) == (5, 4, 0.8)
    assert (m.withdrawal, m.confrontation, m.repaired, m.repair_rate) == (4, 0, 3, 0.75)
    assert (m.median_days, m.open_now, m.undiscussed, m.recurring_clients) == (3.5, 2, 3, 1)
    m = measure([(therapist.pk, None)], last_weeks(4), "confrontation", ((),))[()][()]
    assert (m.ruptures, m.repaired, m.repair_rate, m.median_days) == (1, 0, 0.0, None)
    assert (m.open_now, m.recurring_clients) == (1, 0)


def test_it_takes_the_median_of_an_even_and_an_odd_number_of_repairs(therapist, client_record):
    sessions = [make_session(client_record, days_ago=d) for d in (20, 13, 6)]
    for first, then in ((0, 1), (0, 2), (1, 1)):  # 7, 14 and 0 days
        r = make_rupture(sessions[first], repair_status="resolved")
        make_attempt(r, sessions[then], outcome="resolved")
    m = measure([(therapist.pk, None)], last_weeks(4), "", ((),))[()][()]
    assert m.median_days == 7
    # An earlier failed attempt does not date the repair; the first repairing one does.
    r = make_rupture(sessions[0], repair_status="resolved")
    make_attempt(r, sessions[0], outcome="unresolved")
    make_attempt(r, sessions[2], outcome="resolved")
    assert measure([(therapist.pk, None)], last_weeks(4), "", ((),))[()][()].median_days == 10.5


def test_it_counts_a_pattern_only_in_the_last_five_held_sessions(therapist, client_record):
    sessions = {d: make_session(client_record, days_ago=d) for d in (70, 63, 35, 28, 21, 14, 7)}
    make_session(client_record, days_ago=3, status=SessionStatus.NO_SHOW)
    # topic_shift 6 and 7 held sessions ago: too old to make a pattern.
    make_rupture(sessions[70], markers=["topic_shift"])
    make_rupture(sessions[63], markers=["topic_shift"])
    m = measure([(therapist.pk, None)], last_weeks(12), "", ((),))[()][()]
    assert m.recurring_clients == 0
    # In two of the last five (35 days ago is the fifth most recent held session).
    make_rupture(sessions[35], markers=["topic_shift"])
    make_rupture(sessions[7], markers=["topic_shift", "denial"])
    by_client = measure([(therapist.pk, None)], last_weeks(12), "", (("client_id",),))
    assert by_client[("client_id",)][(client_record.pk,)].recurring_markers == {"topic_shift": 2}


def test_it_counts_a_pattern_as_of_the_end_of_the_period(therapist, client_record):
    for d in (30, 23):
        make_rupture(make_session(client_record, days_ago=d), markers=["denial"])
    # Four held sessions since: by today the older of the two has left the last five.
    for d in (16, 9, 5, 2):
        make_session(client_record, days_ago=d)
    today = timezone.localdate()
    then = Period(today - timedelta(days=40), today - timedelta(days=20))
    assert measure([(therapist.pk, None)], then, "", ((),))[()][()].recurring_clients == 1
    assert measure([(therapist.pk, None)], last_weeks(4), "", ((),))[()][()].recurring_clients == 0


def test_it_finds_a_pattern_and_open_ruptures_older_than_the_trend(therapist, client_record):
    # The measures read only the sessions they count (the trend's and the period's) and,
    # of older ones, the last five held and those with an open rupture: a client back
    # after months away still shows the pattern of their last five sessions.
    for d in (300, 260, 230, 220, 210, 200):
        make_session(client_record, days_ago=d)
    make_session(client_record, days_ago=190, status=SessionStatus.NO_SHOW)
    sessions = TherapySession.objects.filter(client=client_record).order_by("starts_at")
    oldest, *_, fifth_newest, _, _, _, newest = sessions.filter(status=SessionStatus.HELD)
    make_rupture(fifth_newest, markers=["denial"], repair_status="resolved")
    make_rupture(newest, markers=["denial"], repair_status="resolved")
    make_rupture(oldest, markers=["denial"], repair_status="unresolved")
    make_rupture(newest, kind="confrontation", markers=["defends_self"], repair_status="partially_resolved")
    by_client = measure([(therapist.pk, None)], last_weeks(4), "", (("client_id",),))
    m = by_client[("client_id",)][(client_record.pk,)]
    assert m.recurring_markers == {"denial": 2}
    assert (m.open_now, m.held_sessions, m.ruptures) == (1, 0, 0)
    assert measure([(therapist.pk, None)], last_weeks(4), "confrontation", ((),))[()][()].open_now == 0


def test_it_counts_ruptures_and_held_sessions_week_by_week(therapist, caseload):
    m = measure([(therapist.pk, None)], last_weeks(4), "", ((),))[()][()]
    assert len(m.weeks) == 12
    assert m.weeks[-1].starts_on == timezone.localdate() - timedelta(days=6)
    assert [(w.held, w.ruptures) for w in m.weeks] == [
        (0, 0),
        (0, 0),
        (0, 0),
        (1, 1),
        (0, 0),
        (0, 0),
        (0, 0),
        (0, 0),
        (1, 1),
        (2, 2),
        (2, 2),
        (0, 0),
    ]
    assert m.weeks[-1].per_session is None
    assert m.trend_change == 0


def test_it_totals_the_team_and_groups_by_supervisor(
    therapist, caseload, second_supervisee, supervisor
):
    team = [(therapist.pk, supervisor.pk), (second_supervisee.pk, supervisor.pk)]
    result = measure(team, last_weeks(4), "", (("group_id", "therapist_id"), ("group_id",), ()))
    kchen = result[("group_id", "therapist_id")][(supervisor.pk, second_supervisee.pk)]
    assert (kchen.active_clients, kchen.held_sessions, kchen.ruptures, kchen.open_now) == (
        1,
        1,
        1,
        1,
    )
    group, clinic = result[("group_id",)][(supervisor.pk,)], result[()][()]
    for m in (group, clinic):
        assert (m.active_clients, m.held_sessions, m.ruptures, m.open_now) == (3, 6, 6, 4)
        assert (m.repaired, m.median_days, m.recurring_clients, m.undiscussed) == (3, 3.5, 1, 5)


# --- The dashboard page ------------------------------------------------------------------


def test_it_shows_a_supervisor_a_row_per_supervisee_and_a_total(
    as_supervisor, caseload, second_supervisee
):
    response = as_supervisor.get(DASHBOARD, {"period": "4"})
    assert response.status_code == 200
    rows = rows_by_name(response)
    assert set(rows) == {"Dana Lee", "Kai Chen"}
    assert rows["Dana Lee"].measures.ruptures == 5
    assert response.context["total"].measures.ruptures == 6
    html = response.content.decode()
    assert '<a href="/supervision/dlee/?period=4">Dana Lee</a>' in html
    assert '60&nbsp;% <span class="muted small">(3/5)</span>' in html
    assert ">3.5<" in html
    assert "How these are counted" in html and "resolved or partially resolved" in html


def test_it_defaults_to_the_last_twelve_weeks(as_supervisor, caseload):
    response = as_supervisor.get(DASHBOARD)
    period = response.context["period"]
    assert (period.end - period.start).days == 83 and period.end == timezone.localdate()
    assert '<option value="12" selected>' in response.content.decode()


def test_it_filters_by_supervisee_and_kind(as_supervisor, caseload, second_supervisee):
    response = as_supervisor.get(DASHBOARD, {"period": "4", "supervisee": "kchen"})
    assert set(rows_by_name(response)) == {"Kai Chen"}
    response = as_supervisor.get(DASHBOARD, {"period": "4", "kind": "confrontation"})
    assert rows_by_name(response)["Dana Lee"].measures.ruptures == 1
    assert "confrontation (moves against) ruptures only" in response.content.decode()


def test_it_filters_by_custom_dates(as_supervisor, caseload):
    today = timezone.localdate()
    response = as_supervisor.get(
        DASHBOARD,
        {
            "period": "custom",
            "start": (today - timedelta(days=21)).isoformat(),
            "end": (today - timedelta(days=14)).isoformat(),
        },
    )
    m = rows_by_name(response)["Dana Lee"].measures
    assert (m.held_sessions, m.ruptures, m.repaired) == (3, 3, 2)  # r1, r4 and r2
    # Dates alone mean a custom period; the links on the page keep it.
    response = as_supervisor.get(
        DASHBOARD,
        {
            "start": (today - timedelta(days=21)).isoformat(),
            "end": (today - timedelta(days=14)).isoformat(),
        },
    )
    assert rows_by_name(response)["Dana Lee"].measures.ruptures == 3
    assert "period=custom&amp;start=" in response.content.decode()


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"period": "fortnight"}, "period", "Choose one of the listed periods."),
        ({"period": "4\x00"}, "period", "Choose one of the listed periods."),
        ({"period": "custom"}, "start", "Enter the first day of the custom period."),
        (
            {"period": "custom", "start": "2026-01-01"},
            "end",
            "Enter the last day of the custom period.",
        ),
        (
            {"period": "custom", "start": "2026-02-30", "end": "2026-03-01"},
            "start",
            "Enter a date as YYYY-MM-DD",
        ),
        (
            {"period": "custom", "start": "yesterday", "end": "2026-03-01"},
            "start",
            "Enter a date as YYYY-MM-DD",
        ),
        (
            {"period": "custom", "start": "2026-03-02", "end": "2026-03-01"},
            "end",
            "on or after the first day",
        ),
        (
            {"period": "custom", "start": "1850-01-01", "end": "2026-03-01"},
            "start",
            "Choose a date from 1 Jan 2000",
        ),
        (
            {"period": "custom", "start": "2026-01-01", "end": "9999-12-31"},
            "end",
            "Choose a date from 1 Jan 2000",
        ),
        ({"supervisee": "apatel"}, "supervisee", "Choose one of the listed people."),
        ({"kind": "grumpy"}, "kind", "Choose withdrawal, confrontation or any kind."),
    ],
)
def test_it_explains_a_bad_filter_beside_it(
    as_supervisor, caseload, other_therapist, params, field, message
):
    response = as_supervisor.get(DASHBOARD, params)
    assert response.status_code == 400
    html = response.content.decode()
    slot = html.index(f'id="id_{field}_error"')
    assert message in html[slot : slot + 300]
    assert "Nothing to show until the filters marked above are corrected." in html
    assert "rows" not in response.context


def test_it_swaps_the_errors_in_beside_the_fields_for_htmx(as_supervisor, caseload):
    response = as_supervisor.get(DASHBOARD, {"period": "custom"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200  # htmx swaps successful answers only
    assert (
        '<div class="field-errors" id="id_start_error" aria-live="polite" hx-swap-oob="true">'
        in html
    )
    assert "Enter the first day of the custom period." in html
    assert "<html" not in html


def test_it_swaps_only_the_results_for_htmx(as_supervisor, caseload):
    response = as_supervisor.get(
        DASHBOARD, {"period": "4", "sort": "-ruptures"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert "<html" not in html and 'id="filters"' not in html
    assert (
        '<div id="results" class="results" hx-target="this" hx-swap="outerHTML" hx-push-url="true">'
        in html
    )
    assert (
        '<input type="hidden" name="sort" id="id_sort" value="-ruptures" hx-swap-oob="true">'
        in html
    )


def test_it_keeps_the_filters_in_a_plain_get_form_that_htmx_enhances(as_supervisor, caseload):
    html = as_supervisor.get(DASHBOARD, {"period": "4", "sort": "-ruptures"}).content.decode()
    assert '<form id="filters" method="get" action="/supervision/"' in html
    assert 'hx-get="/supervision/" hx-trigger="change, submit" hx-target="#results"' in html
    assert 'hx-push-url="true"' in html
    assert '<input type="hidden" name="sort" id="id_sort" value="-ruptures">' in html


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["Ann Able", "Dana Lee", "Kai Chen"]),
        ("-name", ["Kai Chen", "Dana Lee", "Ann Able"]),
        ("-ruptures", ["Dana Lee", "Kai Chen", "Ann Able"]),
        ("ruptures", ["Ann Able", "Kai Chen", "Dana Lee"]),
        ("-open_now", ["Dana Lee", "Kai Chen", "Ann Able"]),
        # No ruptures means no rate: such rows go last whichever way the column sorts.
        ("repair_rate", ["Kai Chen", "Dana Lee", "Ann Able"]),
        ("-repair_rate", ["Dana Lee", "Kai Chen", "Ann Able"]),
        ("-recurring", ["Dana Lee", "Ann Able", "Kai Chen"]),
    ],
)
def test_it_sorts_by_any_column(
    as_supervisor, caseload, second_supervisee, supervisor, sort, expected
):
    idle = make_user(Role.THERAPIST, username="aable", display_name="Ann Able")
    supervise(supervisor, idle)
    response = as_supervisor.get(DASHBOARD, {"period": "4", "sort": sort})
    assert [row.name for row in response.context["rows"]] == expected


def test_it_offers_every_column_as_a_sort_link_and_marks_the_current_one(as_supervisor, caseload):
    response = as_supervisor.get(
        DASHBOARD, {"period": "4", "kind": "withdrawal", "sort": "-ruptures"}
    )
    html = response.content.decode()
    for header in response.context["headers"]:
        assert f'href="{header["url"]}"' in html.replace("&amp;", "&")
    current = '<th scope="col" class="num" aria-sort="descending">'
    assert current + '<a href="?period=4&amp;kind=withdrawal&amp;sort=ruptures"' in html
    assert 'href="?period=4&amp;kind=withdrawal&amp;sort=-per_session"' in html
    assert 'href="?period=4&amp;kind=withdrawal&amp;sort=name"' in html


def test_it_sorts_by_name_and_says_so_when_asked_for_an_unknown_column(as_supervisor, caseload):
    response = as_supervisor.get(DASHBOARD, {"sort": "password"})
    assert response.status_code == 200
    assert (
        "That is not a column of this table, so the rows are sorted by name."
        in response.content.decode()
    )
    assert response.context["sort"] == "name"


def test_it_draws_a_trend_chart_per_row_with_its_numbers_in_a_table(as_supervisor, caseload):
    html = as_supervisor.get(DASHBOARD, {"period": "4"}).content.decode()
    assert html.count('<svg class="trend"') == 2  # Dana Lee and the total
    assert (
        'role="img" aria-label="Dana Lee: ruptures per held session, week by week over 12 weeks'
        in html
    )
    assert '<rect class="bar no-data"' in html  # weeks without a session: an outline, not a colour
    assert "<title>Week of" in html
    toggle = '<details class="numbers-toggle"><summary>Show the numbers behind the charts'
    assert toggle + "</summary></details>" in html
    numbers = html[html.index('<div class="chart-numbers') :]
    assert "<caption>Weekly numbers: ruptures per held session" in numbers
    assert '<td class="num">1.00 (2/2)</td>' in numbers
    assert "no sessions" in numbers


def test_it_prints_the_chart_numbers_and_reveals_them_on_request():
    css = (Path(__file__).parents[1] / "static/css/app.css").read_text()
    assert ".numbers-toggle[open] + .chart-numbers { position: static" in css
    print_rules = css[css.index("@media print {\n  .numbers-toggle") :]
    assert ".chart-numbers { position: static" in print_rules


def test_it_shows_a_supervisor_without_supervisees_an_explanation(client, db):
    lonely = make_user(Role.SUPERVISOR, username="lonely")
    login(client, lonely)
    response = client.get(DASHBOARD)
    assert response.status_code == 200
    assert "No therapists are assigned to you for supervision." in response.content.decode()


# --- The clinic report (admins) -----------------------------------------------------------


def test_it_shows_admins_the_clinic_by_supervisor_and_therapist(
    as_admin, caseload, second_supervisee, other_supervisor, other_therapist
):
    response = as_admin.get(DASHBOARD, {"period": "4"})
    assert response.status_code == 200
    groups = rows_by_name(response)
    assert set(groups) == {"M. Okafor", "rlindqvist"}
    okafor = groups["M. Okafor"]
    assert [c.name for c in okafor.children] == ["Dana Lee", "Kai Chen"]
    assert okafor.measures.ruptures == 6 and okafor.children[0].measures.ruptures == 5
    assert response.context["total"].measures.ruptures == 6
    assert "Clinic report" in response.content.decode()


def test_it_shows_admins_no_client_no_clinical_text_and_no_link_into_records(as_admin, caseload):
    html = as_admin.get(DASHBOARD, {"period": "4"}).content.decode()
    for private in (
        "C-0001",
        "C-0002",
        "Talked about pacing.",
        "/clients/",
        "/ruptures/",
        "/supervision/dlee/",
    ):
        assert private not in html


def test_it_groups_therapists_without_a_current_supervisor_apart(as_admin, other_therapist):
    make_client(other_therapist)
    rows = rows_by_name(as_admin.get(DASHBOARD))
    assert [c.name for c in rows["No current supervisor"].children] == ["Asha Patel"]


# --- One supervisee's caseload -------------------------------------------------------------


def test_it_shows_a_supervisees_caseload_client_by_client(as_supervisor, therapist, caseload):
    response = as_supervisor.get(caseload_url(therapist), {"period": "4"})
    assert response.status_code == 200
    rows = rows_by_name(response)
    assert set(rows) == {"C-0001", "C-0002"}  # C-0003: discharged, nothing in the period
    assert rows["C-0001"].measures.recurring_markers == {"minimal_response": 3}
    assert rows["C-0001"].url == "/clients/C-0001/"
    html = response.content.decode()
    assert "Falls silent / minimal responses (3 of 5)" in html
    assert '<a href="/clients/C-0001/">C-0001</a>' in html


def test_it_lists_the_ruptures_not_yet_discussed_open_ones_first(
    as_supervisor, therapist, caseload
):
    response = as_supervisor.get(caseload_url(therapist), {"period": "4"})
    r = caseload["ruptures"]
    assert [x.pk for x in response.context["to_discuss"]] == [
        r["r5"].pk,
        r["r2"].pk,
        r["r3"].pk,
        r["r4"].pk,
    ]
    assert f'href="/ruptures/{r["r2"].pk}/"' in response.content.decode()


def test_it_records_who_viewed_a_caseload(as_supervisor, therapist, supervisor, caseload):
    from audit.models import AccessEvent

    as_supervisor.get(caseload_url(therapist))
    event = AccessEvent.objects.get(what="caseload")
    assert (event.user, event.key, event.action) == (supervisor, "dlee", "view")


def test_it_keeps_the_filters_on_the_caseload_page(as_supervisor, therapist, caseload):
    response = as_supervisor.get(caseload_url(therapist), {"period": "4", "kind": "confrontation"})
    assert response.context["total"].measures.ruptures == 1
    response = as_supervisor.get(caseload_url(therapist), {"period": "weekly"})
    assert response.status_code == 400
    assert "Choose one of the listed periods." in response.content.decode()


# --- Who may see what ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "dashboard", "caseload_page"),
    [
        ("as_therapist", 404, 404),
        ("as_other_therapist", 404, 404),
        ("as_supervisor", 200, 200),
        ("as_other_supervisor", 200, 404),
        ("as_admin", 200, 404),
    ],
)
def test_it_lets_only_the_right_people_see_the_supervision_pages(
    request, therapist, caseload, persona, dashboard, caseload_page
):
    if persona == "as_other_supervisor":
        other = request.getfixturevalue("other_supervisor")
        web = request.getfixturevalue("client")
        login(web, other)
    else:
        web = request.getfixturevalue(persona)
    assert web.get(DASHBOARD).status_code == dashboard
    assert web.get(caseload_url(therapist)).status_code == caseload_page


def test_it_shows_another_supervisor_only_their_own_supervisees(client, caseload, other_supervisor):
    login(client, other_supervisor)
    response = client.get(DASHBOARD)
    assert set(rows_by_name(response)) == {"Asha Patel"}
    assert "Dana Lee" not in response.content.decode()


def test_it_sends_anonymous_visitors_to_sign_in(client, therapist, rupture):
    for url in (DASHBOARD, caseload_url(therapist), discuss_url(rupture)):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_it_ends_access_to_a_caseload_with_the_supervision(
    as_supervisor, therapist, supervisor, caseload
):
    SupervisionLink.objects.filter(supervisor=supervisor, therapist=therapist).update(
        ends_on=timezone.localdate() - timedelta(days=1)
    )
    assert as_supervisor.get(caseload_url(therapist)).status_code == 404
    assert rows_by_name(as_supervisor.get(DASHBOARD)) == {}


@pytest.mark.parametrize("username", ["nobody", "dl%00ee", "a b"])
def test_it_answers_404_for_a_caseload_that_is_not_there(as_supervisor, username):
    assert as_supervisor.get(f"/supervision/{username}/").status_code == 404


def test_it_links_supervisors_and_admins_to_the_dashboard(
    as_supervisor, client, admin_user, therapist
):
    assert '<a href="/supervision/" >Supervision</a>' in as_supervisor.get("/").content.decode()
    login(client, admin_user)
    assert '<a href="/supervision/" >Clinic report</a>' in client.get("/").content.decode()
    login(client, therapist)
    assert 'href="/supervision/"' not in client.get("/").content.decode()


# --- Supervision notes ----------------------------------------------------------------------


def test_it_marks_a_rupture_discussed_in_supervision(as_supervisor, rupture, supervisor):
    page = as_supervisor.get(f"/ruptures/{rupture.pk}/").content.decode()
    assert (
        "Mark as discussed in supervision" in page and "Not yet discussed in supervision." in page
    )
    response = as_supervisor.post(
        discuss_url(rupture), {"comment": "  Try naming the silence next time.  "}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/ruptures/{rupture.pk}/#supervision"
    note = SupervisionNote.objects.get()
    assert (note.rupture, note.supervisor, note.comment) == (
        rupture,
        supervisor,
        "Try naming the silence next time.",
    )
    response = as_supervisor.get(f"/ruptures/{rupture.pk}/")
    page = response.content.decode()
    assert "Marked as discussed in supervision." in page
    assert "Try naming the silence next time." in page
    # ... and it is part of the rupture's history.
    last = response.context["history"][-1]
    assert (last.by, last.what, last.comment) == (
        "M. Okafor", "marked it discussed in supervision", "Try naming the silence next time."
    )


def test_it_shows_the_therapist_the_supervisors_comment(client, therapist, rupture, supervisor):
    SupervisionNote.objects.create(
        rupture=rupture, supervisor=supervisor, comment="Good catch on the letter."
    )
    login(client, therapist)
    page = client.get(f"/ruptures/{rupture.pk}/").content.decode()
    assert "Good catch on the letter." in page and "M. Okafor" in page
    assert "Mark as discussed in supervision" not in page


def test_it_counts_a_rupture_discussed_once_it_has_a_note(as_supervisor, rupture):
    before = rows_by_name(as_supervisor.get(DASHBOARD))["Dana Lee"].measures.undiscussed
    as_supervisor.post(discuss_url(rupture), {"comment": "Discussed."})
    after = rows_by_name(as_supervisor.get(DASHBOARD))["Dana Lee"].measures.undiscussed
    assert (before, after) == (1, 0)


def test_it_keeps_every_discussion_of_a_rupture(as_supervisor, rupture):
    as_supervisor.post(discuss_url(rupture), {"comment": "First look."})
    as_supervisor.post(discuss_url(rupture), {"comment": "Came back to it."})
    assert list(SupervisionNote.objects.values_list("comment", flat=True)) == [
        "First look.",
        "Came back to it.",
    ]


@pytest.mark.parametrize(
    ("comment", "message"),
    [
        ("", "Write a short comment on what was discussed."),
        ("   \n ", "Write a short comment on what was discussed."),
        ("x" * (NOTE_MAX_LENGTH + 1), f"at most {NOTE_MAX_LENGTH} characters"),
        ("nul\x00byte", "Null characters are not allowed."),
    ],
)
def test_it_refuses_a_bad_comment_with_a_message_beside_it(
    as_supervisor, rupture, comment, message
):
    response = as_supervisor.post(discuss_url(rupture), {"comment": comment})
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html[html.index('id="id_comment_error"') :]
    assert not SupervisionNote.objects.exists()


def test_it_shows_the_note_form_on_its_own_page(as_supervisor, rupture):
    response = as_supervisor.get(discuss_url(rupture))
    assert response.status_code == 200
    assert 'name="comment"' in response.content.decode()


@pytest.mark.parametrize("persona", ["as_therapist", "as_other_therapist", "as_admin"])
def test_it_lets_no_one_but_the_supervisor_mark_a_rupture_discussed(request, rupture, persona):
    web = request.getfixturevalue(persona)
    assert web.post(discuss_url(rupture), {"comment": "Sneaky."}).status_code == 404
    assert not SupervisionNote.objects.exists()


def test_it_lets_another_supervisor_neither_see_nor_mark_the_rupture(
    client, rupture, other_supervisor
):
    login(client, other_supervisor)
    assert client.post(discuss_url(rupture), {"comment": "Not mine."}).status_code == 404
    assert client.get(discuss_url(rupture)).status_code == 404
    assert not SupervisionNote.objects.exists()


def test_it_answers_404_for_a_rupture_that_is_not_there(as_supervisor):
    assert (
        as_supervisor.post("/supervision/ruptures/999999/discuss", {"comment": "x"}).status_code
        == 404
    )


def test_it_answers_405_to_other_methods_on_the_note_url(as_supervisor, rupture):
    assert as_supervisor.put(discuss_url(rupture)).status_code == 405


def test_it_refuses_to_change_or_delete_a_supervision_note(rupture, supervisor):
    note = SupervisionNote.objects.create(
        rupture=rupture, supervisor=supervisor, comment="Said this."
    )
    with pytest.raises(DatabaseError), transaction.atomic():
        SupervisionNote.objects.filter(pk=note.pk).update(comment="Said that.")
    with pytest.raises(DatabaseError), transaction.atomic():
        SupervisionNote.objects.filter(pk=note.pk).delete()
    with pytest.raises(DatabaseError), transaction.atomic():
        SupervisionNote.objects.create(rupture=rupture, supervisor=supervisor, comment="  ")
    assert SupervisionNote.objects.get().comment == "Said this."


# --- The number of queries does not grow with the caseload --------------------------------


def build_team(supervisor, *, therapists, clients, weeks=4):
    """`therapists` supervisees of `supervisor`, each with `clients` clients seen weekly,
    a rupture in every other session, some repaired, some discussed."""
    team = []
    for t in range(therapists):
        user = make_user(Role.THERAPIST, username=f"team{t}")
        supervise(supervisor, user)
        team.append(user)
        for c in range(clients):
            client = make_client(user, code=f"T{t}-C{c:03d}")
            sessions = TherapySession.objects.bulk_create(
                [
                    TherapySession(
                        client=client,
                        therapist=user,
                        status=SessionStatus.HELD,
                        starts_at=timezone.now() - timedelta(days=7 * w + 1),
                    )
                    for w in range(weeks)
                ]
            )
            ruptures = RuptureEvent.objects.bulk_create(
                [
                    RuptureEvent(
                        session=s,
                        kind="withdrawal" if i % 3 else "confrontation",
                        markers=["minimal_response"],
                        intensity=3,
                        created_by=user,
                        updated_by=user,
                        repair_status="resolved" if i % 2 else "unaddressed",
                    )
                    for i, s in enumerate(sessions)
                    if i % 2 == 0 or c % 2
                ]
            )
            for r in ruptures[:1]:
                make_attempt(r, r.session, outcome="attempted")
                SupervisionNote.objects.create(rupture=r, supervisor=supervisor, comment="Seen.")
    return team


# The session, the user and the session's save (3 with its savepoint), the supervisees,
# one query for every measure and the trend, one for the open flags, one for the alliance checks.
DASHBOARD_QUERIES = 9
# The same with the supervisee in place of the list, plus the clients, the undiscussed
# ruptures, the unlogged client reports and the access log.
CASELOAD_QUERIES = 13


def test_it_runs_the_same_few_queries_for_a_small_and_a_large_team(
    as_supervisor, supervisor, therapist, rupture, django_assert_max_num_queries
):
    with django_assert_max_num_queries(DASHBOARD_QUERIES):
        small = as_supervisor.get(DASHBOARD)
    assert len(small.context["rows"]) == 1
    build_team(supervisor, therapists=3, clients=20)
    with django_assert_max_num_queries(DASHBOARD_QUERIES):
        large = as_supervisor.get(DASHBOARD, {"sort": "-ruptures"})
    assert len(large.context["rows"]) == 4
    assert large.context["total"].measures.active_clients == 61
    assert large.context["total"].measures.ruptures > 150


def test_it_runs_the_same_few_queries_for_a_small_and_a_large_caseload(
    as_supervisor, supervisor, therapist, rupture, django_assert_max_num_queries
):
    with django_assert_max_num_queries(CASELOAD_QUERIES):
        as_supervisor.get(caseload_url(therapist))
    team = build_team(supervisor, therapists=1, clients=25)
    with django_assert_max_num_queries(CASELOAD_QUERIES):
        response = as_supervisor.get(caseload_url(team[0]))
    assert len(response.context["rows"]) == 25


def test_it_runs_the_same_few_queries_for_the_clinic_report(
    client, admin_user, supervisor, other_supervisor, rupture, django_assert_max_num_queries
):
    login(client, admin_user)
    # Plus the supervisors' names.
    with django_assert_max_num_queries(DASHBOARD_QUERIES + 1):
        client.get(DASHBOARD)
    build_team(supervisor, therapists=3, clients=20)
    build_team_for_other = make_user(Role.THERAPIST, username="solo")
    supervise(other_supervisor, build_team_for_other)
    with django_assert_max_num_queries(DASHBOARD_QUERIES + 1):
        response = client.get(DASHBOARD)
    assert len(response.context["rows"]) == 2


@pytest.fixture
def cached_figures(settings):
    settings.SUPERVISION_CACHE_SECONDS = 60
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "supervision-tests"}}
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def test_it_keeps_the_dashboards_figures_for_a_minute(as_supervisor, supervisor, rupture, cached_figures):
    with CaptureQueriesContext(connection) as once:
        first = as_supervisor.get(DASHBOARD)
    assert any("percentile_cont" in q["sql"] for q in once.captured_queries)
    with CaptureQueriesContext(connection) as again:
        second = as_supervisor.get(DASHBOARD)
    assert not any("percentile_cont" in q["sql"] for q in again.captured_queries)
    assert second.context["taken_at"] == first.context["taken_at"]
    assert "Figures as of" in second.content.decode()


def test_it_shows_a_supervision_note_in_the_figures_at_once(as_supervisor, rupture, cached_figures):
    before = as_supervisor.get(DASHBOARD).context["total"].measures
    as_supervisor.post(discuss_url(rupture), {"comment": "Talked it through."})
    after = as_supervisor.get(DASHBOARD).context["total"].measures
    assert after != before


def test_it_computes_live_when_the_cache_is_down(as_supervisor, rupture, settings):
    settings.SUPERVISION_CACHE_SECONDS = 60
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0",
                                   "OPTIONS": {"socket_timeout": 0.2, "socket_connect_timeout": 0.2}}}
    response = as_supervisor.get(DASHBOARD)
    assert response.status_code == 200 and response.context["rows"]


def test_it_keeps_the_drawing_of_the_figures_per_address(as_supervisor, rupture, cached_figures):
    first = as_supervisor.get(DASHBOARD)
    again = as_supervisor.get(DASHBOARD)
    # (The pages differ in their CSRF token only.)
    assert first.context["results_html"] == again.context["results_html"]
    assert again.context["results_html"] in again.content.decode()
    fragment = as_supervisor.get(DASHBOARD, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and 'id="results"' in fragment
    other = as_supervisor.get(DASHBOARD, {"period": "4"}).content.decode()
    assert "(28 days)" in other and "(28 days)" not in first.content.decode()


def test_it_counts_open_flags_per_supervisee_and_client(as_supervisor, supervisor, therapist, rupture):
    from reminders.sweep import sweep

    now = timezone.now()
    make_session(rupture.session.client, starts_at=now + timedelta(hours=20), status="scheduled")
    sweep(now=now, window=timedelta(hours=48))
    rows = {row.key: row.measures for row in as_supervisor.get(DASHBOARD).context["rows"]}
    assert rows[therapist.username].open_flags == 1
    caseload = as_supervisor.get(caseload_url(therapist)).context["rows"]
    assert [r.measures.open_flags for r in caseload if r.key == rupture.session.client.code] == [1]
    # A repaired rupture's flag stays on record but is no longer open.
    RuptureEvent.objects.filter(pk=rupture.pk).update(repair_status="resolved")
    rows = {row.key: row.measures for row in as_supervisor.get(DASHBOARD).context["rows"]}
    assert rows[therapist.username].open_flags == 0

