"""What keeps a page's cost independent of the clinic's size: the track-record rollup the
database maintains, and no session write on every request. (Times: bench/bench_pages.py.)"""

import re
import threading
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AccessEvent
from reminders.models import Flag
from ruptures.models import RepairAttempt, RuptureEvent
from strategies.models import TrackRecord
from strategies.suggestions import track_records
from supervision.models import SupervisionNote
from tests.factories import make_attempt, make_check, make_client, make_rupture, make_session


def rollup():
    return {
        (r.kind, r.strategy, r.outcome): r.attempts
        for r in TrackRecord.objects.all() if r.attempts
    }


def recount():
    """The track record from every attempt, as the rollup must always hold it."""
    rows = (
        RepairAttempt.objects.filter(rupture__deleted_at__isnull=True)
        .values_list("rupture__kind", "strategy", "outcome").annotate(n=Count("pk")).order_by()
    )
    return {(kind, strategy, outcome): n for kind, strategy, outcome, n in rows}


def restore(record):
    """Undo a soft delete in place, as a restore does."""
    fields = {"deleted_at": None, "deleted_by": None, "deletion_reason": ""}
    if any(f.name == "deletion" for f in type(record)._meta.fields):
        fields["deletion"] = None
    type(record).all_objects.filter(pk=record.pk).update(**fields)


def test_the_track_record_counts_attempts_as_they_are_saved(client_record, therapist):
    rupture = make_rupture(make_session(client_record, days_ago=14))
    make_attempt(rupture, strategy="invite_discussion", outcome="resolved")
    make_attempt(rupture, strategy="invite_discussion", outcome="attempted")
    confrontation = make_rupture(make_session(make_client(therapist), days_ago=7), kind="confrontation",
                                 markers=["defends_self"])
    make_attempt(confrontation, strategy="clarify_misunderstanding", outcome="resolved")
    assert rollup() == recount() == {
        ("withdrawal", "invite_discussion", "resolved"): 1,
        ("withdrawal", "invite_discussion", "attempted"): 1,
        ("confrontation", "clarify_misunderstanding", "resolved"): 1,
    }


def test_the_track_record_follows_an_attempts_outcome_and_its_ruptures_kind(client_record):
    rupture = make_rupture(make_session(client_record, days_ago=14))
    attempt = make_attempt(rupture, strategy="invite_discussion", outcome="attempted")
    attempt.outcome = "resolved"
    attempt.save()
    assert rollup() == {("withdrawal", "invite_discussion", "resolved"): 1}
    RuptureEvent.objects.filter(pk=rupture.pk).update(kind="confrontation")
    assert rollup() == recount() == {("confrontation", "invite_discussion", "resolved"): 1}
    # A change that moves nothing writes nothing: the intensity is not counted.
    RuptureEvent.objects.filter(pk=rupture.pk).update(intensity=5)
    assert rollup() == recount()


def test_a_soft_deleted_attempt_or_rupture_leaves_the_track_record_and_a_restore_brings_it_back(
    client_record, therapist
):
    rupture = make_rupture(make_session(client_record, days_ago=14))
    kept = make_attempt(rupture, strategy="invite_discussion", outcome="resolved")
    dropped = make_attempt(rupture, strategy="invite_discussion", outcome="attempted")
    dropped.soft_delete(by=therapist, reason="Logged against the wrong rupture.")
    assert rollup() == recount() == {("withdrawal", "invite_discussion", "resolved"): 1}

    RuptureEvent.objects.get(pk=rupture.pk).soft_delete(by=therapist, reason="Duplicate entry.")
    assert rollup() == recount() == {}
    assert track_records(client_record, "withdrawal") == ({}, {})

    restore(RuptureEvent.all_objects.get(pk=rupture.pk))
    kept.refresh_from_db()
    expected = {("withdrawal", "invite_discussion", "resolved"): 1} if kept.deleted_at is None else {}
    assert rollup() == recount() == expected
    restore(dropped)
    restore(kept)
    assert rollup() == recount() == {
        ("withdrawal", "invite_discussion", "resolved"): 1,
        ("withdrawal", "invite_discussion", "attempted"): 1,
    }


def test_a_bulk_insert_is_counted_by_one_statement(client_record):
    rupture = make_rupture(make_session(client_record, days_ago=14))
    attempts = [
        RepairAttempt(rupture=rupture, session=rupture.session, created_by=rupture.created_by,
                      strategy=strategy, outcome=outcome)
        for strategy in ("invite_discussion", "validate_defensive_posture", "change_tasks_goals")
        for outcome in ("resolved", "attempted", "unresolved")
        for _ in range(20)
    ]
    with CaptureQueriesContext(connection) as queries:
        RepairAttempt.objects.bulk_create(attempts)
    assert len(queries) == 1
    assert rollup() == recount()
    assert sum(rollup().values()) == 180


def test_rebuild_track_record_counts_afresh(client_record):
    make_attempt(make_rupture(make_session(client_record, days_ago=14)), outcome="resolved")
    TrackRecord.objects.update(attempts=99)  # drift the command repairs
    out = StringIO()
    call_command("rebuild_track_record", stdout=out)
    assert rollup() == recount() == {("withdrawal", "invite_discussion", "resolved"): 1}
    assert "1 attempts counted" in out.getvalue()


def test_the_engines_track_records_are_one_query_on_the_rollup(client_record, therapist, django_assert_num_queries):
    for n in range(30):
        elsewhere = make_rupture(make_session(make_client(therapist), days_ago=14))
        make_attempt(elsewhere, strategy="invite_discussion", outcome="resolved" if n % 3 else "attempted")
    mine = make_rupture(make_session(client_record, days_ago=7))
    make_attempt(mine, strategy="change_tasks_goals", outcome="resolved")
    with django_assert_num_queries(1) as captured:
        for_client, for_clinic = track_records(client_record, "withdrawal")
    assert for_client == {"change_tasks_goals": (1, 1)}
    assert for_clinic == {"invite_discussion": (20, 30), "change_tasks_goals": (1, 1)}
    # The clinic's share comes from the rollup, not from the attempts table.
    clinic_part = captured.captured_queries[0]["sql"].split("UNION")[1]
    assert "strategies_trackrecord" in clinic_part and "ruptures_repairattempt" not in clinic_part


# --- The idle timer: the session written once a minute, not on every request ----------------


def session_writes(queries):
    return [q["sql"] for q in queries if re.match(r"\s*(UPDATE|INSERT INTO) \"django_session\"", q["sql"])]


def test_it_writes_the_session_at_most_once_a_minute(as_therapist, django_assert_max_num_queries):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        with CaptureQueriesContext(connection) as queries:
            for _ in range(5):
                traveller.shift(timedelta(seconds=10))
                assert as_therapist.get("/clients/").status_code == 200
        assert session_writes(queries) == []
        traveller.shift(timedelta(seconds=15))  # a minute after signing in
        with CaptureQueriesContext(connection) as queries:
            assert as_therapist.get("/clients/").status_code == 200
            assert as_therapist.get("/clients/").status_code == 200
        assert len(session_writes(queries)) == 1


def test_the_idle_limit_slides_with_requests_a_minute_apart(as_therapist):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        for _ in range(4):  # 56 minutes in all, never 15 idle
            traveller.shift(timedelta(minutes=14))
            assert as_therapist.get("/clients/").status_code == 200
        traveller.shift(timedelta(minutes=15, seconds=1))
        assert as_therapist.get("/clients/")["Location"].startswith("/accounts/login/")


# --- Indexes that match the pages' queries ----------------------------------------------------

# Every table that grows with the clinic (bench/plans.py watches the same).
WATCHED = ("therapy_sessions_therapysession", "ruptures_ruptureevent", "ruptures_repairattempt",
           "therapy_sessions_client", "checks_alliancecheck", "reminders_flag", "supervision_supervisionnote")


def seq_scans(node):
    if node.get("Node Type") == "Seq Scan":
        yield node["Relation Name"]
    for child in node.get("Plans", ()):
        yield from seq_scans(child)


def scans_forced_off(queries):
    """Tables each SELECT would still scan whole with sequential scans made as dear as
    they get: those no index serves. (On a test database's few rows the planner rightly
    prefers a sequential scan, so the plan it would choose proves nothing.)"""
    found = set()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for query in queries:
            sql = query["sql"]
            if not sql.lstrip().lstrip("(").upper().startswith(("SELECT", "WITH")):
                continue
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql.replace("%", "%%"))
            plan = cursor.fetchone()[0]
            found |= {t for t in seq_scans(plan[0]["Plan"]) if t in WATCHED}
        cursor.execute("SET LOCAL enable_seqscan = on")
    return found


def test_every_everyday_page_has_an_index_for_each_of_its_queries(
    client, therapist, supervisor, client_record, held_session
):
    from tests.conftest import login

    earlier = make_session(client_record, days_ago=8)
    rupture = make_rupture(earlier)
    make_attempt(rupture, session=held_session, outcome="resolved")
    attempted = make_rupture(held_session, repair_status="attempted")
    upcoming = make_session(client_record, days_ago=-2, status="scheduled")
    # A row in each table that grows with the clinic: the plans read notes, checks and
    # flags too (a note a therapist's home shows, a check and a flag the brief shows).
    SupervisionNote.objects.create(rupture=rupture, supervisor=supervisor, comment="Talked it through.")
    make_check(held_session, "client", tension="yes", intensity=2, worked_through=3, together=4)
    Flag.objects.create(rupture=rupture, session=upcoming, escalated=False, carried_over=False)
    # And one escalated: the supervisor's home lists it, folded by supervisee.
    Flag.objects.create(rupture=attempted, session=upcoming, escalated=True, carried_over=True)
    # Statistics of a handful of rows, as autovacuum may or may not have taken them by
    # now: the plans must find their index either way, so the test does not depend on it.
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(WATCHED)}")
    pages = [
        "/", "/clients/", f"/clients/{client_record.code}/", f"/ruptures/{rupture.pk}/",
        f"/sessions/{upcoming.pk}/brief",
        f"/sessions/{held_session.pk}/ruptures/new?kind=withdrawal&markers=denial",
    ]
    login(client, therapist)
    for page in pages:
        # The rupture form's address is the live suggestions endpoint when htmx asks.
        htmx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "suggestions"} if "new?" in page else {}
        with CaptureQueriesContext(connection) as queries:
            assert client.get(page, **htmx).status_code == 200
        assert scans_forced_off(queries) == set(), page
    login(client, supervisor)
    # The supervisor's home lists risk concerns: logged late (by when the app recorded
    # them) or on a recent session.
    make_rupture(earlier, risk="self_harm", risk_recorded_at=timezone.now())
    make_rupture(held_session, risk="safeguarding")
    # Each shows the supervisee's records: the lists are planned with a row in them.
    shown_on = {"/supervision/": str(therapist), "/": client_record.code, "/clients/": client_record.code}
    for page, shown in shown_on.items():
        with CaptureQueriesContext(connection) as queries:
            response = client.get(page)
        assert response.status_code == 200 and shown in response.content.decode(), page
        assert scans_forced_off(queries) == set(), page


# --- The whole clinic's dashboard figures, kept fresh by beat -----------------------------------


def test_beat_keeps_the_clinics_figures_so_an_admins_page_scans_no_history(
    client, admin_user, supervisor, rupture, settings
):
    from django.core.cache import cache

    from supervision.tasks import refresh_clinic_figures
    from tests.conftest import login

    settings.SUPERVISION_CACHE_SECONDS = 60
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "clinic-figures-tests"}}
    cache.clear()
    assert "supervision.refresh_clinic_figures" in {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert refresh_clinic_figures.delay().get() == {"refreshed": 1, "therapists": 1}
    login(client, admin_user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/supervision/")
    assert response.status_code == 200
    assert not any("percentile_cont" in q["sql"] for q in queries.captured_queries)
    assert response.context["total"].measures.ruptures == 1
    assert "Figures as of" in response.content.decode()
    # Other filters are computed on request.
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/supervision/", {"kind": "confrontation"}).status_code == 200
    assert any("percentile_cont" in q["sql"] for q in queries.captured_queries)
    cache.clear()


def test_beat_refreshes_nothing_when_the_figures_are_not_kept(admin_user, settings):
    from supervision.tasks import refresh_clinic_figures

    settings.SUPERVISION_CACHE_SECONDS = 0
    assert refresh_clinic_figures.delay().get() == {"refreshed": 0}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first", ["attempt", "deletion"])
def test_an_attempt_saved_while_its_rupture_is_deleted_is_counted_once_or_not_at_all(
    role_groups, therapist, client_record, first
):
    """Two transactions at once: whichever commits first, the rollup ends as a recount."""
    rupture = make_rupture(make_session(client_record, days_ago=14))
    make_attempt(rupture, outcome="resolved")
    holding, done = threading.Event(), threading.Event()
    errors = []

    def attempt():
        try:
            with transaction.atomic():
                make_attempt(rupture, outcome="attempted")
                holding.set()
                done.wait(5)
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    def deletion():
        try:
            with transaction.atomic():
                RuptureEvent.objects.get(pk=rupture.pk).soft_delete(by=therapist, reason="Duplicate entry.")
                holding.set()
                done.wait(5)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    starts, then = (attempt, deletion) if first == "attempt" else (deletion, attempt)
    holder = threading.Thread(target=starts)
    holder.start()
    assert holding.wait(10)
    # The second transaction waits on the first's lock on the rupture; let it start, then
    # let the first commit.
    second = threading.Thread(target=then)
    second.start()
    second.join(0.5)
    done.set()
    holder.join(10)
    second.join(10)
    assert not errors
    assert rollup() == recount() == {}


def test_every_connection_tells_the_row_triggers_to_ignore_nothing(rupture):
    """django-pgtrigger's row triggers read pgtrigger.ignore first; unset, the read raises
    an error they catch, a subtransaction per row that made the demo's and an import's
    COPY ten times slower. Set for every connection, pgtrigger.ignore() still works."""
    import pgtrigger

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('pgtrigger.ignore')")
        assert cursor.fetchone() == ("{}",)
    with pytest.raises(Exception, match="Cannot delete rows"), transaction.atomic():
        RuptureEvent.objects.filter(pk=rupture.pk).delete()
    with pgtrigger.ignore("ruptures.RuptureEvent:no_hard_delete"):
        RuptureEvent.all_objects.filter(pk=rupture.pk).delete()
    assert not RuptureEvent.all_objects.filter(pk=rupture.pk).exists()


def test_every_connection_runs_without_jit(db):
    # A whole clinic's figures spent most of their time compiling (config/settings.py).
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)


def test_a_record_page_view_updates_each_access_log_index_once(as_therapist, client_record):
    # Every record page writes an access event: an index whose columns lead another's
    # would be written on every view and never read (audit migration 0006).
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "audit_accessevent")
    indexes = sorted(tuple(c["columns"]) for c in constraints.values() if c["index"] and not c["primary_key"])
    assert indexes == [("client_id", "at"), ("user_id", "at")]
    before = AccessEvent.objects.count()
    assert as_therapist.get(f"/clients/{client_record.code}/").status_code == 200
    assert AccessEvent.objects.count() == before + 1


# --- The dashboard reads the history it counts, not all of it --------------------------------

def rows_read(node, tables):
    """Rows the plan's scans of `tables` found, filtered-out ones too, over all loops."""
    if node.get("Relation Name") in tables and "Actual Rows" in node:
        found = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        yield round(found * node.get("Actual Loops", 1))
    for child in node.get("Plans", ()):
        yield from rows_read(child, tables)


def measures_rows_read(therapist):
    from supervision.measures import Period, measure

    today = timezone.localdate()
    with CaptureQueriesContext(connection) as queries:
        measure([(therapist.pk, None)], Period(today - timedelta(weeks=4), today), "", ((),))
    sql = next(q["sql"] for q in queries if q["sql"].lstrip().startswith("WITH"))
    plan = analysed_through_indexes(sql)
    return sum(rows_read(plan, {"therapy_sessions_therapysession", "ruptures_ruptureevent"}))


def analysed_through_indexes(sql):
    """EXPLAIN ANALYZE's plan of `sql`, fresh statistics taken, read as on a clinic's
    tables: through the indexes, not a test table's few pages."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE therapy_sessions_therapysession, ruptures_ruptureevent")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql.replace("%", "%%"))
        plan = cursor.fetchone()[0]
        cursor.execute("SET LOCAL enable_seqscan = on")
    return plan[0]["Plan"]


def test_the_dashboard_measures_read_no_more_rows_for_a_longer_history(therapist, client_record):
    for d in (30, 21, 14, 7, 3):
        make_rupture(make_session(client_record, days_ago=d), repair_status="attempted")
    make_rupture(make_session(client_record, days_ago=400), repair_status="unresolved")
    before = measures_rows_read(therapist)
    # A year of closed history between them, which no measure of the last four weeks counts.
    for d in range(100, 400, 7):
        make_rupture(make_session(client_record, days_ago=d), repair_status="resolved")
    # Reading that history would add a row for each of its 43 sessions and their ruptures;
    # a LIMIT may look one row further on either side.
    assert abs(measures_rows_read(therapist) - before) <= 2


def test_the_check_figures_probe_each_session_never_hash_a_whole_table(
        therapist, client_record, shipped_instruments):
    """Whether a session's client report went unlogged asks two questions of that session
    (a rupture logged? the therapist saw it?). Written as NOT EXISTS inside a count's
    FILTER, PostgreSQL may answer them with a hashed subplan: every therapist's check and
    every rupture of the clinic read up front (it did on the large demo clinic, and on
    this small one too). Probed row by row (config.lookups.finds_none) it has no such form."""
    from supervision.measures import Period, measure
    from tests.factories import make_check

    for d in range(1, 28):
        session = make_session(client_record, days_ago=d)
        make_check(session, "client", tension="yes", together=3)
        make_check(session, "therapist", tension="no", together=4)
    make_rupture(session)
    today = timezone.localdate()
    with CaptureQueriesContext(connection) as queries:
        measure([(therapist.pk, None)], Period(today - timedelta(weeks=4), today), "", ((),))
    sql = next(q["sql"] for q in queries if "checks_alliancecheck" in q["sql"] and "COUNT" in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE checks_alliancecheck, ruptures_ruptureevent")
        cursor.execute("EXPLAIN (VERBOSE) " + sql.replace("%", "%%"))
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "SubPlan" in plan and "hashed" not in plan.lower()


# --- Each rupture's copy of its session's client ------------------------------------------------

def test_a_rupture_carries_its_sessions_client_however_it_is_written(client_record, therapist):
    other = make_client(therapist)
    rupture = make_rupture(make_session(client_record, days_ago=7))
    rupture.refresh_from_db()
    assert rupture.session_client_id == client_record.pk
    # A save with the copy unset (an instance never read back) sets it again.
    rupture.session_client_id = None
    rupture.save()
    rupture.refresh_from_db()
    assert rupture.session_client_id == client_record.pk
    # Nor can a write name another client than the session's.
    RuptureEvent.objects.filter(pk=rupture.pk).update(session_client=other)
    rupture.refresh_from_db()
    assert rupture.session_client_id == client_record.pk
    moved = make_session(other, days_ago=3)
    RuptureEvent.objects.filter(pk=rupture.pk).update(session=moved)
    assert RuptureEvent.objects.get(pk=rupture.pk).session_client_id == other.pk
    [bulk] = RuptureEvent.objects.bulk_create([RuptureEvent(
        session=moved, kind="withdrawal", markers=["denial"], intensity=2,
        created_by=therapist, updated_by=therapist,
    )])
    assert RuptureEvent.objects.get(pk=bulk.pk).session_client_id == other.pk


def test_a_session_never_changes_client(client_record, therapist):
    from django.db import DatabaseError

    from sessions.models import TherapySession

    session = make_session(client_record, days_ago=7)
    with pytest.raises(DatabaseError, match="Cannot update rows"), transaction.atomic():
        TherapySession.objects.filter(pk=session.pk).update(client=make_client(therapist))
    # Everything else about it may change.
    TherapySession.objects.filter(pk=session.pk).update(note="moved to Tuesday")


def test_any_of_filters_by_a_list_of_keys_bound_as_one_array(therapist):
    from django.db.models import F

    from config.lookups import AnyOf
    from sessions.models import Client

    clients = [make_client(therapist) for _ in range(3)]
    keys = [clients[0].pk, clients[2].pk]
    with CaptureQueriesContext(connection) as queries:
        found = set(Client.objects.filter(AnyOf(F("pk"), keys)).values_list("pk", flat=True))
    assert found == set(keys)
    assert "= ANY(" in queries[0]["sql"]
    assert not Client.objects.filter(AnyOf(F("pk"), [])).exists()


def test_the_home_pages_notes_and_stalled_flags_join_each_table_once(as_therapist, client_record):
    """Planning a query grows with its joins: the notes went through a subquery that
    joined ruptures, sessions and clients again, and the stalled flags reached the
    client twice (through the rupture's copy to filter, through the session to show),
    and both read every column of five tables, password hashes among them."""
    with CaptureQueriesContext(connection) as queries:
        assert as_therapist.get("/").status_code == 200
    lists = [q["sql"] for q in queries if q["sql"].startswith(
        ('SELECT "supervision_supervisionnote"', 'SELECT "reminders_flag"."id", "reminders_flag"."rupture_id"'))]
    assert len(lists) == 2
    for sql in lists:
        for table in ("ruptures_ruptureevent", "therapy_sessions_therapysession", "therapy_sessions_client"):
            assert sql.count(f'JOIN "{table}"') == 1, table
        assert "password" not in sql and " IN (SELECT" not in sql


def test_our_select_draws_the_markup_djangos_own_does():
    """templates/django/forms/widgets/select.html writes each option where Django's
    includes two templates per option: the same HTML, groups and choices as they come."""
    from django import forms
    from django.conf import settings
    from django.forms.renderers import DjangoTemplates, get_default_renderer

    widget = forms.Select(
        attrs={"required": True, "aria-describedby": "x_help"},
        choices=[("", "---------"), ("a", "Alpha & <b>"), ("Group", [("b", "Beta"), ("c", 'Gamma "q"')])],
    )
    ours = get_default_renderer()
    assert ours.get_template("django/forms/widgets/select.html").origin.name == str(
        settings.BASE_DIR / "templates/django/forms/widgets/select.html")
    for value in (None, "a", "c"):
        assert widget.render("x", value, renderer=ours) == widget.render("x", value, renderer=DjangoTemplates())



def test_the_homes_supervision_notes_start_from_the_caseloads_ruptures_not_every_session(
        as_therapist, therapist, supervisor, client_record):
    """The notes of the last fortnight are found through the ruptures of the therapist's
    clients (their client index), so a long history of sessions without a rupture adds
    nothing to read; through each session, it read every session the client ever had."""
    from supervision.models import SupervisionNote

    rupture = make_rupture(make_session(client_record, days_ago=5))
    SupervisionNote.objects.create(rupture=rupture, supervisor=supervisor, comment="Talked it through.")
    for d in range(12, 400, 7):  # a year of weekly sessions, none with a rupture
        make_session(client_record, days_ago=d)
    with CaptureQueriesContext(connection) as queries:
        assert "Talked it through." in as_therapist.get("/").content.decode()
    sql = next(q["sql"] for q in queries if q["sql"].startswith('SELECT "supervision_supervisionnote"'))
    # The one session of the one note's rupture, not the client's 57.
    assert sum(rows_read(analysed_through_indexes(sql), {"therapy_sessions_therapysession"})) <= 1


def test_a_supervisors_escalated_flags_are_read_through_their_supervisees_clients(
        as_supervisor, therapist, other_therapist, client_record):
    """The home page's escalated flags start from the supervisees' clients (their keys
    read first); given the caseload as a subquery, the planner read every flag and every
    session booked in the clinic, however few of them were the supervisor's."""
    from reminders.models import Flag

    def flagged(client):
        rupture = make_rupture(make_session(client, days_ago=3))
        upcoming = make_session(client, days_ago=-2, status="scheduled")
        Flag.objects.create(rupture=rupture, session=upcoming, escalated=True, carried_over=False)

    flagged(client_record)
    for n in range(30):  # the rest of the clinic: another therapist's caseload
        flagged(make_client(other_therapist, code=f"O-{n:03d}"))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE reminders_flag")
    with CaptureQueriesContext(connection) as queries:
        assert client_record.code in as_supervisor.get("/").content.decode()
    # The escalated flags before a coming session (the stalled ones have no session).
    sql = next(q["sql"] for q in queries
               if q["sql"].startswith('SELECT "reminders_flag"') and "'scheduled'" in q["sql"])
    plan = analysed_through_indexes(sql)
    # The supervisee's one flag and its session, never the other caseload's thirty.
    assert sum(rows_read(plan, {"reminders_flag", "therapy_sessions_therapysession"})) <= 4
