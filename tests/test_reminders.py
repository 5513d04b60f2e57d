import json
import logging
import re
import threading
import time
from datetime import timedelta

import pytest
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.utils import timezone

from accounts.models import Role
from reminders.models import Flag, SweepHeartbeat
from reminders.sweep import CLAIM_LEASE, claim_for_therapists, raise_flags, sweep
from reminders.tasks import sweep as sweep_task
from sessions.models import SessionStatus
from tests.brokers import publishing_to
from tests.factories import make_client, make_rupture, make_session, make_user, supervise
from tests.test_home import section

WINDOW = timedelta(hours=48)


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


def booked(client, when, status=SessionStatus.SCHEDULED):
    return make_session(client, starts_at=when, status=status)


def held(client, when):
    return make_session(client, starts_at=when, status=SessionStatus.HELD)


def pairs():
    return set(Flag.objects.filter(reason="rupture").values_list("rupture_id", "session_id"))


def flag_of(rupture, session):
    return Flag.objects.get(rupture=rupture, session=session)


# --- the rule ---------------------------------------------------------------------------

def test_it_flags_an_open_rupture_before_the_clients_next_session(now, rupture):
    upcoming = booked(rupture.session.client, now + timedelta(hours=20))

    result = sweep(now=now, window=WINDOW)

    assert pairs() == {(rupture.pk, upcoming.pk)}
    [raised] = result.raised
    assert (raised.rupture, raised.session, raised.client, raised.therapist) == (
        rupture.key, upcoming.key, "C-0001", "dlee"
    )


def test_it_ignores_soft_deleted_ruptures_and_sessions(now, rupture, therapist):
    upcoming = booked(rupture.session.client, now + timedelta(hours=20))
    rupture.soft_delete(by=therapist, reason="Logged on the wrong client.")
    assert sweep(now=now, window=WINDOW).raised == ()
    other = make_rupture(make_session(rupture.session.client, starts_at=now - timedelta(days=2)))
    upcoming.soft_delete(by=therapist, reason="Booked twice.")
    assert sweep(now=now, window=WINDOW).raised == ()
    assert not Flag.objects.filter(rupture=other).exists()


def test_it_flags_sessions_exactly_at_the_start_and_the_end_of_the_window(now, rupture):
    client = rupture.session.client
    at_start = booked(client, now)
    at_end = booked(client, now + WINDOW)
    booked(client, now - timedelta(microseconds=1))
    booked(client, now + WINDOW + timedelta(microseconds=1))

    sweep(now=now, window=WINDOW)

    assert pairs() == {(rupture.pk, at_start.pk), (rupture.pk, at_end.pk)}


def test_it_reads_the_window_from_the_settings(now, rupture, settings):
    settings.REMINDER_WINDOW_HOURS = 2
    soon = booked(rupture.session.client, now + timedelta(hours=2))
    booked(rupture.session.client, now + timedelta(hours=3))

    sweep(now=now)

    assert pairs() == {(rupture.pk, soon.pk)}


@pytest.mark.parametrize("status", [SessionStatus.CANCELLED, SessionStatus.NO_SHOW, SessionStatus.HELD])
def test_it_flags_only_scheduled_sessions(now, rupture, status):
    booked(rupture.session.client, now + timedelta(hours=3), status=status)

    assert [f for f in sweep(now=now, window=WINDOW).raised if f.reason == "rupture"] == []
    assert pairs() == set()


def test_it_ignores_other_clients_sessions_even_with_the_same_therapist(now, rupture, therapist, other_therapist):
    booked(make_client(therapist), now + timedelta(hours=3))
    booked(make_client(other_therapist), now + timedelta(hours=3))

    sweep(now=now, window=WINDOW)

    assert pairs() == set()


@pytest.mark.parametrize(
    "status, flagged",
    [("unaddressed", True), ("attempted", True), ("unresolved", True),
     ("partially_resolved", False), ("resolved", False)],
)
def test_it_flags_open_ruptures_only(now, held_session, status, flagged):
    rupture = make_rupture(held_session, repair_status=status)
    upcoming = booked(held_session.client, now + timedelta(hours=3))

    sweep(now=now, window=WINDOW)

    assert pairs() == ({(rupture.pk, upcoming.pk)} if flagged else set())


def test_it_flags_only_ruptures_of_sessions_before_the_upcoming_one(now, client_record):
    # A sweep run for a past moment (--now) can find a session still marked scheduled
    # that started before a rupture was logged.
    then = now - timedelta(days=10)
    earlier = make_rupture(held(client_record, then - timedelta(days=2)))
    stale_booking = booked(client_record, then + timedelta(hours=5))
    make_rupture(held(client_record, then + timedelta(days=3)))

    sweep(now=then, window=WINDOW)

    assert pairs() == {(earlier.pk, stale_booking.pk)}


def test_it_escalates_a_rupture_carried_over_a_held_session(now, client_record):
    carried = make_rupture(held(client_record, now - timedelta(days=14)), intensity=2)
    held(client_record, now - timedelta(days=7))
    upcoming = booked(client_record, now + timedelta(hours=3))

    sweep(now=now, window=WINDOW)

    flag = flag_of(carried, upcoming)
    assert (flag.escalated, flag.carried_over, flag.escalation_reason) == (True, True, "carried over")


def test_it_does_not_count_cancelled_or_missed_sessions_as_carrying_over(now, client_record):
    rupture = make_rupture(held(client_record, now - timedelta(days=14)), intensity=3)
    make_session(client_record, starts_at=now - timedelta(days=7), status=SessionStatus.CANCELLED)
    make_session(client_record, starts_at=now - timedelta(days=3), status=SessionStatus.NO_SHOW)
    make_session(make_client(client_record.therapist), starts_at=now - timedelta(days=5))
    upcoming = booked(client_record, now + timedelta(hours=3))

    sweep(now=now, window=WINDOW)

    flag = flag_of(rupture, upcoming)
    assert (flag.escalated, flag.carried_over, flag.escalation_reason) == (False, False, "")


def test_it_does_not_count_a_second_rupture_in_the_same_session_as_carrying_over(now, held_session):
    first = make_rupture(held_session, intensity=1)
    make_rupture(held_session, intensity=1)
    upcoming = booked(held_session.client, now + timedelta(hours=3))

    sweep(now=now, window=WINDOW)

    assert flag_of(first, upcoming).escalated is False


@pytest.mark.parametrize("intensity, escalated", [(3, False), (4, True), (5, True)])
def test_it_escalates_an_intense_rupture(now, held_session, intensity, escalated):
    rupture = make_rupture(held_session, intensity=intensity)
    upcoming = booked(held_session.client, now + timedelta(hours=3))

    sweep(now=now, window=WINDOW)

    flag = flag_of(rupture, upcoming)
    assert (flag.escalated, flag.carried_over) == (escalated, False)
    assert flag.escalation_reason == ("high intensity" if escalated else "")


def test_it_keeps_a_flag_whose_rupture_was_resolved_since(now, rupture, as_therapist):
    upcoming = booked(rupture.session.client, now + timedelta(hours=3))
    sweep(now=now, window=WINDOW)
    rupture.repair_status = "resolved"
    rupture.save(update_fields=["repair_status"])

    again = sweep(now=now + timedelta(minutes=5), window=WINDOW)

    assert again.raised == ()
    assert pairs() == {(rupture.pk, upcoming.pk)}
    home = as_therapist.get("/")
    assert [f.rupture.repair_status for f in home.context["flags"]] == ["resolved"]
    assert 'class="badge status-resolved">Resolved<' in home.content.decode()
    brief = as_therapist.get(f"/sessions/{upcoming.pk}/brief")
    assert brief.context["items"] == []
    assert [f.rupture for f in brief.context["repaired"]] == [rupture]


def test_it_raises_nothing_the_second_time_at_the_same_moment(now, rupture):
    booked(rupture.session.client, now + timedelta(hours=3))
    assert len(sweep(now=now, window=WINDOW).raised) == 1

    assert sweep(now=now, window=WINDOW).raised == ()
    assert Flag.objects.count() == 1


def test_it_flags_each_upcoming_session_once(now, rupture):
    client = rupture.session.client
    tomorrow = booked(client, now + timedelta(hours=24))
    sweep(now=now, window=WINDOW)
    day_after = booked(client, now + timedelta(hours=50))

    later = sweep(now=now + timedelta(hours=12), window=WINDOW)

    assert [f.session for f in later.raised] == [day_after.key]
    assert pairs() == {(rupture.pk, tomorrow.pk), (rupture.pk, day_after.pk)}


def test_it_sweeps_one_client_when_asked(now, rupture, therapist):
    booked(rupture.session.client, now + timedelta(hours=3))
    other = make_client(therapist)
    make_rupture(held(other, now - timedelta(days=2)))
    other_upcoming = booked(other, now + timedelta(hours=3))

    result = sweep(now=now, window=WINDOW, client_id=other.pk)

    assert [f.session for f in result.raised] == [other_upcoming.key]
    assert Flag.objects.count() == 1


# --- notifications ----------------------------------------------------------------------

def clinical_strings(*ruptures):
    for rupture in ruptures:
        session, client = rupture.session, rupture.session.client
        strings = (client.code, client.name, rupture.key, session.key, rupture.plan,
                   rupture.hypothesis, rupture.noticed, rupture.get_kind_display(),
                   *rupture.marker_labels(), *(s.key for s in client.sessions.all()))
        yield from (s for s in strings if s)


def every_part(message):
    return [message.subject, message.body, *(content for content, _ in message.alternatives)]


@pytest.fixture
def caseload(now, therapist, supervisor, other_therapist, other_supervisor):
    """Two therapists' clients with open ruptures before sessions in the window."""
    alice = make_client(therapist, code="C-0100", name="Alice Example")
    bea = make_client(therapist, code="C-0200", name="Bea Example")
    carl = make_client(other_therapist, code="C-0300", name="Carl Example")
    ruptures = [
        make_rupture(held(alice, now - timedelta(days=3)), intensity=5, plan="Ask about her sister's visit.",
                     hypothesis="Feels judged about the divorce.", noticed="Looked away at the fee talk."),
        make_rupture(held(alice, now - timedelta(days=3)), intensity=2, kind="confrontation",
                     markers=["complaint_about_progress"], plan="Revisit the goals."),
        make_rupture(held(bea, now - timedelta(days=10)), intensity=2, plan="Name the silence."),
        make_rupture(held(carl, now - timedelta(days=2)), intensity=2, plan="Check the homework."),
    ]
    held(bea, now - timedelta(days=3))  # carries Bea's rupture over
    for client in (alice, bea, carl):
        booked(client, now + timedelta(hours=30))
    return ruptures


def test_it_emails_each_therapist_counts_and_a_link_only(now, caseload, mailoutbox, settings):
    settings.SITE_URL = "https://rupture-log.example.org"

    result = sweep(now=now, window=WINDOW)

    assert result.counts() == {"raised": 4, "escalated": 2, "notified": 4, "escalations_notified": 2,
                               "emails": 3, "failed": 0,
                               "risk_alerts": 0, "risk_alerts_notified": 0}
    to_therapists = {m.to[0]: m for m in mailoutbox if "open rupture" in m.subject}
    dlee, apatel = to_therapists["dlee@clinic.example"], to_therapists["apatel@clinic.example"]
    assert dlee.subject == "3 open ruptures to review before your next sessions"
    assert "3 open ruptures are flagged before 2 upcoming sessions of yours" in dlee.body
    assert apatel.subject == "1 open rupture to review before your next session"
    for message in (dlee, apatel):
        assert "https://rupture-log.example.org/" in message.body
        [(html, mimetype)] = message.alternatives
        assert mimetype == "text/html" and 'href="https://rupture-log.example.org/"' in html
        for part in every_part(message):
            for secret in clinical_strings(*caseload):
                assert secret not in part


def test_it_emails_the_supervisor_escalated_flags_by_supervisee(now, caseload, mailoutbox, supervisor, therapist):
    sweep(now=now, window=WINDOW)

    [escalation] = [m for m in mailoutbox if m.to == [supervisor.email]]
    assert escalation.subject == "2 escalated ruptures among your supervisees' clients"
    assert "Dana Lee: 2" in escalation.body
    for part in every_part(escalation):
        for secret in clinical_strings(*caseload):
            assert secret not in part
    # Carl's rupture is neither intense nor carried over: nothing for his supervisor.
    assert not [m for m in mailoutbox if m.to == ["rlindqvist@clinic.example"]]
    assert set(Flag.objects.filter(escalated=True).values_list("escalation_notified_at", flat=True)) != {None}
    assert set(Flag.objects.filter(escalated=False).values_list("escalation_claimed_at", flat=True)) == {None}


def test_it_sends_each_email_once(now, caseload, mailoutbox):
    sweep(now=now, window=WINDOW)
    sent = len(mailoutbox)

    again = sweep(now=now + timedelta(minutes=5), window=WINDOW)

    assert again.counts()["emails"] == 0
    assert len(mailoutbox) == sent
    assert not Flag.objects.filter(notified_at__isnull=True).exists()


def test_it_emails_flags_an_earlier_sweep_raised_but_did_not_send(now, caseload, mailoutbox):
    # What a sweep killed between the insert and the e-mails leaves behind.
    raise_flags(now=now, window=WINDOW)
    assert not mailoutbox

    result = sweep(now=now, window=WINDOW)

    assert result.raised == ()
    assert result.counts()["notified"] == 4
    assert len([m for m in mailoutbox if m.to == ["dlee@clinic.example"]]) == 1


def test_it_does_not_email_a_flag_repaired_or_cancelled_before_the_email(now, caseload, mailoutbox):
    raise_flags(now=now, window=WINDOW)
    alice_intense, alice_other, bea_rupture, carl_rupture = caseload
    alice_intense.repair_status = "resolved"
    alice_intense.save(update_fields=["repair_status"])
    carl_rupture.session.client.sessions.filter(status=SessionStatus.SCHEDULED).update(
        status=SessionStatus.CANCELLED
    )

    result = sweep(now=now, window=WINDOW)

    assert result.counts()["notified"] == 2
    assert [m.subject for m in mailoutbox if "open rupture" in m.subject] == [
        "2 open ruptures to review before your next sessions"
    ]


def test_it_leaves_escalations_without_a_current_supervisor_for_later(now, caseload, supervisor, mailoutbox):
    supervisor.supervisee_links.update(ends_on=timezone.localdate() - timedelta(days=1))

    sweep(now=now, window=WINDOW)

    assert not [m for m in mailoutbox if m.to == [supervisor.email]]
    assert set(Flag.objects.filter(escalated=True).values_list("escalation_claimed_at", flat=True)) == {None}


def test_it_skips_therapists_without_an_email_address(now, caseload, other_therapist, mailoutbox):
    other_therapist.email = ""
    other_therapist.save(update_fields=["email"])

    sweep(now=now, window=WINDOW)

    assert not [m for m in mailoutbox if m.to == [""]]
    carl_flag = Flag.objects.get(rupture=caseload[3])
    assert (carl_flag.claimed_at, carl_flag.notified_at) == (None, None)


class RefusingBackend(BaseEmailBackend):
    """A mail server that refuses every message."""

    def send_messages(self, messages):
        raise ConnectionRefusedError("no mail today")


def test_it_hands_flags_back_when_the_mail_server_refuses(now, caseload, settings, mailoutbox, caplog):
    settings.EMAIL_BACKEND = "tests.test_reminders.RefusingBackend"
    with caplog.at_level(logging.WARNING, logger="reminders.sweep"):
        failed = sweep(now=now, window=WINDOW)

    assert failed.counts()["failed"] == 3 and failed.counts()["emails"] == 0
    assert set(Flag.objects.values_list("claimed_at", "notified_at")) == {(None, None)}
    assert "ConnectionRefusedError" in caplog.text
    for secret in clinical_strings(*caseload):
        assert secret not in caplog.text

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    retried = sweep(now=now + timedelta(minutes=5), window=WINDOW)

    assert retried.counts()["notified"] == 4
    assert len(mailoutbox) == 3


def test_it_takes_over_a_claim_whose_sweep_died_before_sending(now, caseload, mailoutbox):
    raise_flags(now=now, window=WINDOW)
    claim_for_therapists(now=now, clock=timezone.now() - CLAIM_LEASE - timedelta(minutes=1))
    fresh_claim = Flag.objects.filter(rupture=caseload[3])
    fresh_claim.update(claimed_at=timezone.now())

    result = sweep(now=now, window=WINDOW)

    # The long-dead claims are taken over; the fresh one still belongs to its sweep.
    assert result.counts()["notified"] == 3
    assert not [m for m in mailoutbox if m.to == ["apatel@clinic.example"]]


def test_it_lets_only_one_of_two_claims_take_a_flag(now, caseload):
    raise_flags(now=now, window=WINDOW)

    first = claim_for_therapists(now=now, clock=timezone.now())
    second = claim_for_therapists(now=now, clock=timezone.now())

    assert len(first) == 4 and second == []


def lock_waiters():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_it_lets_only_one_of_two_concurrent_sweeps_claim_a_flag(role_groups, now, caseload):
    raise_flags(now=now, window=WINDOW)
    found = {}

    def second_worker():
        try:
            found["second"] = claim_for_therapists(now=now, clock=timezone.now())
        finally:
            connections.close_all()

    with transaction.atomic():
        found["first"] = claim_for_therapists(now=now, clock=timezone.now())
        other = threading.Thread(target=second_worker)
        other.start()
        # The second claim waits on the first one's row locks until it commits.
        deadline = time.monotonic() + 10
        while lock_waiters() == 0:
            assert time.monotonic() < deadline, "the second claim never waited for the first"
            time.sleep(0.02)
    other.join(timeout=10)

    assert len(found["first"]) == 4
    assert found["second"] == []


def sweep_queries(django_assert_max_num_queries, now):
    # 12 for the flags, 3 for stalled repairs, 2 for risk alerts.
    with django_assert_max_num_queries(17) as captured:
        result = sweep(now=now, window=WINDOW)
    return len(captured.captured_queries), result


def add_caseloads(now, supervisor, n):
    for _ in range(n):
        therapist = make_user(Role.THERAPIST)
        supervise(supervisor, therapist)
        for _ in range(3):
            client = make_client(therapist)
            make_rupture(held(client, now - timedelta(days=3)), intensity=5)
            make_rupture(held(client, now - timedelta(days=3)), intensity=1)
            booked(client, now + timedelta(hours=5))


def test_it_sweeps_in_a_constant_number_of_queries(now, supervisor, django_assert_max_num_queries, mailoutbox):
    add_caseloads(now, supervisor, 1)
    few, small = sweep_queries(django_assert_max_num_queries, now)

    add_caseloads(now, supervisor, 12)
    many, large = sweep_queries(django_assert_max_num_queries, now + timedelta(minutes=5))

    assert (small.counts()["raised"], large.counts()["raised"]) == (6, 72)
    assert large.counts()["emails"] == 13  # twelve therapists and their supervisor
    assert many == few


# --- heartbeat and /healthz ----------------------------------------------------------------

def test_it_records_a_heartbeat_for_full_sweeps_only(now, rupture):
    sweep(now=now, window=WINDOW, client_id=rupture.session.client_id)
    assert not SweepHeartbeat.objects.exists()

    booked(rupture.session.client, now + timedelta(hours=3))
    sweep(now=now, window=WINDOW)

    beat = SweepHeartbeat.objects.get()
    assert (beat.raised, beat.notified) == (1, 1)
    assert timezone.now() - beat.finished_at < timedelta(minutes=1)


def test_it_reports_a_recent_sweep_as_healthy(as_admin, settings, redis_url):
    # Each check's answer is for admins; anyone else gets the status alone (tests/test_health.py).
    settings.REDIS_URL = redis_url
    sweep()

    response = as_admin.get("/healthz")

    assert response.status_code == 200
    assert response.json()["sweep"] == "ok"


@pytest.mark.parametrize("age_minutes, status", [(14, 200), (16, 503)])
def test_it_answers_503_when_the_sweep_is_older_than_three_intervals(
    as_admin, settings, redis_url, age_minutes, status
):
    settings.REDIS_URL = redis_url
    settings.REMINDER_SWEEP_MINUTES = 5
    SweepHeartbeat.objects.create(finished_at=timezone.now() - timedelta(minutes=age_minutes))

    response = as_admin.get("/healthz")

    assert response.status_code == status
    assert response.json()["sweep"] == ("ok" if status == 200 else "error: SweepStale")


def test_it_answers_503_when_no_sweep_ever_ran(as_admin, settings, redis_url):
    settings.REDIS_URL = redis_url

    response = as_admin.get("/healthz")

    assert response.status_code == 503
    assert response.json()["sweep"] == "error: SweepNeverRan"


def test_it_does_not_expect_a_scheduled_sweep_without_a_broker(as_admin, settings):
    settings.REDIS_URL = None

    response = as_admin.get("/healthz")

    assert response.status_code == 200
    assert response.json()["sweep"].startswith("not scheduled")


# --- the task and the on-commit sweep ---------------------------------------------------------

def test_it_hands_celery_counts_only(now, rupture):
    booked(rupture.session.client, now + timedelta(hours=3))

    counts = sweep_task.apply(kwargs={"now_iso": now.isoformat()}).get()

    assert counts == {"raised": 1, "escalated": 0, "notified": 1, "escalations_notified": 0,
                      "emails": 1, "failed": 0, "risk_alerts": 0, "risk_alerts_notified": 0}
    assert Flag.objects.count() == 1


def test_it_sweeps_the_client_when_a_rupture_is_logged(
    as_therapist, client_record, held_session, django_capture_on_commit_callbacks, mailoutbox
):
    upcoming = booked(client_record, timezone.now() + timedelta(hours=6))
    form = {"kind": "withdrawal", "actor": "client", "markers": ["topic_shift"], "intensity": "3",
            "source": "unknown", "plan": "Ask about the move."}

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = as_therapist.post(f"/sessions/{held_session.pk}/ruptures/new", form)

    assert response.status_code == 302
    assert len(callbacks) == 1
    assert list(Flag.objects.values_list("session", flat=True)) == [upcoming.pk]
    assert [m.to for m in mailoutbox] == [["dlee@clinic.example"]]


def test_it_sweeps_the_client_when_a_session_is_booked(
    as_therapist, rupture, django_capture_on_commit_callbacks
):
    starts_at = timezone.localtime(timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    form = {"starts_at": starts_at, "duration_minutes": "50", "status": "scheduled", "note": ""}

    with django_capture_on_commit_callbacks(execute=True):
        response = as_therapist.post("/clients/C-0001/sessions/new", form)

    assert response.status_code == 302
    assert list(Flag.objects.values_list("rupture", flat=True)) == [rupture.pk]


@pytest.mark.parametrize("change", ["edit", "status", "attempt", "session_status"])
def test_it_enqueues_a_sweep_on_every_save(as_therapist, rupture, django_capture_on_commit_callbacks, change):
    requests = {
        "edit": (f"/ruptures/{rupture.pk}/edit", {
            "kind": "withdrawal", "actor": "client", "markers": ["topic_shift"], "intensity": "4",
            "source": "unknown", "version": rupture.version}),
        "status": (f"/ruptures/{rupture.pk}/status", {"repair_status": "unresolved", "version": rupture.version}),
        "attempt": (f"/ruptures/{rupture.pk}/attempts/new", {
            "session": rupture.session_id, "strategy": "invite_discussion", "outcome": "attempted", "note": ""}),
        "session_status": (f"/sessions/{rupture.session_id}/status", {"status": "held"}),
    }
    url, data = requests[change]

    with django_capture_on_commit_callbacks() as callbacks:
        response = as_therapist.post(url, data)

    assert response.status_code == 302
    assert len(callbacks) == 1


def test_it_saves_the_rupture_when_the_broker_is_down(
    as_therapist, held_session, django_capture_on_commit_callbacks, caplog, unreachable_broker
):
    form = {"kind": "withdrawal", "actor": "client", "markers": ["topic_shift"], "intensity": "3",
            "source": "unknown"}

    with caplog.at_level(logging.WARNING, logger="reminders.services"):
        with django_capture_on_commit_callbacks(execute=True):
            response = as_therapist.post(f"/sessions/{held_session.pk}/ruptures/new", form)

    assert response.status_code == 302
    assert held_session.ruptures.count() == 1
    assert "Could not enqueue a reminder sweep (OperationalError)" in caplog.text
    assert "C-0001" not in caplog.text


@pytest.fixture
def unreachable_broker():
    # Publishing for real, to a port nothing listens on.
    with publishing_to("redis://127.0.0.1:1/0"):
        yield


# --- pages ---------------------------------------------------------------------------------

def test_it_shows_the_therapist_their_flags_with_a_count_and_a_link_to_the_brief(
    now, caseload, as_therapist, therapist
):
    past = make_rupture(held(caseload[0].session.client, now - timedelta(days=20)))
    sweep(now=now, window=WINDOW)
    long_gone = booked(caseload[0].session.client, now + timedelta(hours=1))
    Flag.objects.create(rupture=past, session=long_gone, escalated=False, carried_over=False)
    long_gone.starts_at = now - timedelta(days=1)
    long_gone.save(update_fields=["starts_at"])

    response = as_therapist.get("/")

    flags = list(response.context["flags"])
    assert {f.session.client.code for f in flags} == {"C-0100", "C-0200"}
    assert len(flags) == 4  # Alice's two ruptures and the earlier one, Bea's one; not Carl's
    html = response.content.decode()
    assert 'id="flags-h"><span class="count">4</span> open ruptures flagged before these sessions' in html
    for f in flags:
        assert f'href="/sessions/{f.session_id}/brief"' in html
    assert "carried over" in html and "high intensity" in html


def test_it_shows_the_supervisor_escalated_flags_by_supervisee(
    now, caseload, as_supervisor, supervisor, therapist, other_therapist
):
    newcomer = make_user(Role.THERAPIST, username="newcomer", display_name="New Comer")
    supervise(supervisor, newcomer)
    theirs = make_client(newcomer)
    make_rupture(held(theirs, now - timedelta(days=1)), intensity=4)
    make_rupture(held(theirs, now - timedelta(days=1)), intensity=1)
    booked(theirs, now + timedelta(hours=3))
    make_rupture(held(caseload[3].session.client, now - timedelta(days=1)), intensity=5)  # not theirs
    sweep(now=now, window=WINDOW)

    response = as_supervisor.get("/")

    flags = list(response.context["escalated_flags"])
    assert [f.session.client.therapist.username for f in flags] == ["dlee", "dlee", "newcomer"]
    assert all(f.escalated for f in flags)
    html = response.content.decode()
    assert 'id="escalated-h">Escalated before upcoming sessions <span class="count">3</span>' in html
    assert html.index('id="escalated-dlee"') < html.index('id="escalated-newcomer"')
    assert "C-0300" not in html


def test_the_supervisors_escalated_flags_fold_within_each_supervisee(now, as_supervisor, supervisor):
    """A busy caseload's flags do not push a quieter one's out of view: each supervisee's
    soonest three are shown, under their whole count, with a plain link to the rest."""
    busy = make_user(Role.THERAPIST, username="abbott", display_name="Abbott")
    quiet = make_user(Role.THERAPIST, username="zeller", display_name="Zeller")
    for supervisee in (busy, quiet):
        supervise(supervisor, supervisee)
    clients = [make_client(busy) for _ in range(5)]
    for hours, client in enumerate(clients, start=1):
        make_rupture(held(client, now - timedelta(days=1)), intensity=5)
        booked(client, now + timedelta(hours=hours))
    theirs = make_client(quiet)
    make_rupture(held(theirs, now - timedelta(days=1)), intensity=5)
    booked(theirs, now + timedelta(hours=30))
    sweep(now=now, window=WINDOW)

    html = section(as_supervisor.get("/"), "escalated-h", "stalled-h")

    assert html.startswith('id="escalated-h">Escalated before upcoming sessions <span class="count">6</span>')
    busy_html = html[html.index('id="escalated-abbott"'):html.index('id="escalated-zeller"')]
    assert busy_html.startswith('id="escalated-abbott">Abbott <span class="count">5</span>')
    assert [c.code for c in clients if c.code in busy_html] == [c.code for c in clients[:3]]  # the soonest
    assert 'href="?all=escalated#escalated-abbott"' in busy_html and "Show 2 more flags" in busy_html
    assert 'id="escalated-zeller">Zeller <span class="count">1</span>' in html and theirs.code in html
    assert html.count("?all=escalated#") == 1

    # Unfolded without JavaScript: every flag, no link; htmx swaps the same box.
    unfolded = section(as_supervisor.get("/?all=escalated"), "escalated-h", "stalled-h")
    assert all(c.code in unfolded for c in clients) and "?all=escalated" not in unfolded
    assert 'id="escalated-fold"' in unfolded


def test_it_builds_the_home_pages_in_a_constant_number_of_queries(
    now, supervisor, therapist, client, django_assert_max_num_queries
):
    add_caseloads(now, supervisor, 1)
    own = make_client(therapist)
    for _ in range(2):
        make_rupture(held(own, now - timedelta(days=2)), intensity=5)
    booked(own, now + timedelta(hours=2))
    sweep(now=now, window=WINDOW)
    counts = {}
    for who in (therapist, supervisor):
        client.force_login(who)
        with django_assert_max_num_queries(13) as captured:
            client.get("/")
        counts[who.username] = len(captured.captured_queries)

    add_caseloads(now, supervisor, 10)
    for _ in range(20):
        make_rupture(held(own, now - timedelta(days=2)), intensity=5)
    sweep(now=now + timedelta(minutes=5), window=WINDOW)
    for who in (therapist, supervisor):
        client.force_login(who)
        with django_assert_max_num_queries(13) as captured:
            response = client.get("/")
        assert len(captured.captured_queries) == counts[who.username]
    assert response.context["escalated_flags"].total == 11 * 3 + 22


# --- the session brief ---------------------------------------------------------------------

@pytest.fixture
def briefed(now, client_record):
    """A session tomorrow, with open ruptures before it and one after it."""
    before = make_rupture(held(client_record, now - timedelta(days=8)), intensity=4, plan="Ask how the letter landed.",
                          hypothesis="Felt pushed.")
    attempted = make_rupture(held(client_record, now - timedelta(days=1)), repair_status="attempted", plan="")
    make_rupture(held(client_record, now - timedelta(days=1)), repair_status="resolved", plan="Resolved one.")
    upcoming = booked(client_record, now + timedelta(hours=20))
    return upcoming, [before, attempted]


def test_it_briefs_the_therapist_before_a_session(now, briefed, as_therapist):
    upcoming, open_ruptures = briefed
    sweep(now=now, window=WINDOW)

    response = as_therapist.get(f"/sessions/{upcoming.pk}/brief")

    assert response.status_code == 200
    assert [item["rupture"] for item in response.context["items"]] == open_ruptures
    assert all(item["advice"].suggestions for item in response.context["items"])
    html = response.content.decode()
    assert "Ask how the letter landed." in html and "Felt pushed." in html
    assert "No plan written yet." in html
    assert "Resolved one." not in html
    assert 'class="suggestions"' in html
    # "I used this" under each suggestion, each rupture's to its own page.
    for rupture, item in zip(open_ruptures, response.context["items"], strict=True):
        assert html.count(f'href="/ruptures/{rupture.pk}/?strategy=') == len(item["advice"].suggestions)
    assert html.count("escalated: carried over") == 1  # the older one; a held session lies between


def test_it_shows_what_was_tried_and_what_supervision_said_then_two_suggestions(
    now, briefed, as_therapist, supervisor
):
    from supervision.models import SupervisionNote
    from tests.factories import make_attempt

    upcoming, (before, attempted) = briefed
    later = held(before.session.client, now - timedelta(days=1))
    make_attempt(before, later, strategy="acknowledge_contribution", outcome="partially_resolved",
                 note="Owned my part; still guarded.")
    SupervisionNote.objects.create(rupture=before, supervisor=supervisor, comment="Go slower on the letter.")

    response = as_therapist.get(f"/sessions/{upcoming.pk}/brief")

    html = response.content.decode()
    article = html[html.index(f'id="rupture-{before.pk}-h"'):html.index(f'id="rupture-{attempted.pk}-h"')]
    order = [article.index(text) for text in (
        "Ask how the letter landed.", "Tried so far", "Partially resolved", "Owned my part; still guarded.",
        "From supervision", "Go slower on the letter.", "What to try now",
    )]
    assert order == sorted(order)
    item = response.context["items"][0]
    suggestions = item["advice"].suggestions
    assert len(suggestions) > 2
    # The best two shown, the rest folded to their names, in their when-groups.
    assert article.count('class="suggestion-head"') == 2
    assert article.count('<li class="suggestion folded"') == len(suggestions) - 2
    # The two expanded are the engine's best two, wherever their when-group puts them.
    expanded = re.findall(r'<li class="suggestion(?: top)?" data-strategy="([^"]+)"', article)
    assert sorted(expanded) == sorted(s.strategy for s in suggestions[:2])
    assert "Nothing tried yet." in html  # the other rupture


def test_it_adds_no_query_per_rupture_for_its_history(now, client_record, as_therapist, supervisor,
                                                       django_assert_num_queries):
    from django.test.utils import CaptureQueriesContext

    from supervision.models import SupervisionNote
    from tests.factories import make_attempt

    def add_history(rupture):
        make_attempt(rupture, note="Tried.")
        make_attempt(rupture, note="Tried again.")
        SupervisionNote.objects.create(rupture=rupture, supervisor=supervisor, comment="Noted.")

    first, *others = [make_rupture(held(client_record, now - timedelta(days=d))) for d in (9, 8, 7)]
    upcoming = booked(client_record, now + timedelta(hours=20))
    url = f"/sessions/{upcoming.pk}/brief"
    add_history(first)
    with CaptureQueriesContext(connection) as one:
        as_therapist.get(url)
    for rupture in others:
        add_history(rupture)

    with django_assert_num_queries(len(one.captured_queries)):
        response = as_therapist.get(url)
    assert response.content.decode().count("Tried again.") == 3


def test_it_suggests_from_the_history_up_to_the_briefed_session(now, client_record, as_therapist):
    # The same marker in two earlier sessions makes a pattern: expressive work first.
    for days in (20, 13, 6):
        make_rupture(held(client_record, now - timedelta(days=days)), markers=["abstract_communication"],
                     source="misunderstanding")
    upcoming = booked(client_record, now + timedelta(hours=20))

    response = as_therapist.get(f"/sessions/{upcoming.pk}/brief")

    newest = response.context["items"][-1]
    assert newest["advice"].suggestions[0].family == "expressive"


def test_it_records_who_read_a_brief(briefed, as_therapist, therapist):
    from audit.models import AccessEvent

    upcoming, _ = briefed
    as_therapist.get(f"/sessions/{upcoming.pk}/brief")

    event = AccessEvent.objects.get()
    assert (event.user, event.what, event.key, event.client) == (therapist, "brief", upcoming.key, upcoming.client)


def test_it_shows_the_brief_to_the_therapists_supervisor_without_edit_links(briefed, as_supervisor):
    upcoming, open_ruptures = briefed

    response = as_supervisor.get(f"/sessions/{upcoming.pk}/brief")

    assert response.status_code == 200
    assert len(response.context["items"]) == 2
    assert "?strategy=" not in response.content.decode()


@pytest.mark.parametrize("persona", ["other_therapist", "other_supervisor", "admin_user"])
def test_it_hides_the_brief_from_everyone_else(briefed, request, client, persona):
    upcoming, _ = briefed
    client.force_login(request.getfixturevalue(persona))

    assert client.get(f"/sessions/{upcoming.pk}/brief").status_code == 404


def test_it_sends_anonymous_visitors_to_sign_in_before_a_brief(briefed, client):
    upcoming, _ = briefed

    response = client.get(f"/sessions/{upcoming.pk}/brief")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_refuses_to_post_to_a_brief(briefed, as_therapist):
    upcoming, _ = briefed

    assert as_therapist.post(f"/sessions/{upcoming.pk}/brief").status_code == 405


def test_it_says_when_nothing_is_open_before_a_session(now, client_record, as_therapist):
    upcoming = booked(client_record, now + timedelta(hours=20))

    response = as_therapist.get(f"/sessions/{upcoming.pk}/brief")

    assert "No open ruptures before this session." in response.content.decode()


def test_it_answers_404_for_a_brief_of_no_session(as_therapist):
    assert as_therapist.get("/sessions/999999/brief").status_code == 404


# --- the command ---------------------------------------------------------------------------

def run(*args):
    from io import StringIO

    out = StringIO()
    call_command("flag_open_ruptures", *args, stdout=out)
    return out.getvalue()


def test_it_prints_the_flags_raised_as_json(now, caseload):
    output = run("--now", now.isoformat(), "--json")

    flags = json.loads(output)
    alice_intense = caseload[0]
    assert {"reason": "rupture", "rupture": alice_intense.key, "session": alice_intense.session.client.sessions.get(
        status="scheduled").key, "client": "C-0100", "therapist": "dlee", "escalated": True} in flags
    assert len(flags) == 4
    assert all(set(f) == {"reason", "rupture", "session", "client", "therapist", "escalated"} for f in flags)
    assert json.loads(run("--now", now.isoformat(), "--json")) == []


def test_it_prints_the_flags_raised_as_lines(now, caseload):
    output = run("--now", now.isoformat())

    assert f"{caseload[0].key}" in output and "C-0100  dlee  escalated" in output
    assert output.splitlines()[-1] == "4 flag(s) raised, 2 escalated; 3 e-mail(s) sent, 0 failed."


def test_it_takes_the_window_in_hours(now, rupture):
    booked(rupture.session.client, now + timedelta(hours=30))

    assert json.loads(run("--now", now.isoformat(), "--window", "24", "--json")) == []
    assert len(json.loads(run("--now", now.isoformat(), "--window", "30", "--json"))) == 1


def test_it_reads_a_now_without_offset_in_the_clinics_time_zone(rupture, settings):
    settings.TIME_ZONE = "Europe/Paris"
    tomorrow = timezone.localtime(timezone.now() + timedelta(days=1)).replace(hour=10, minute=0, second=0,
                                                                             microsecond=0)
    upcoming = booked(rupture.session.client, tomorrow)

    naive = tomorrow.replace(tzinfo=None).isoformat()
    assert [f["session"] for f in json.loads(run("--now", naive, "--window", "1", "--json"))] == [upcoming.key]


@pytest.mark.parametrize(
    "args, message",
    [(["--now", "yesterday"], "--now 'yesterday': expected an ISO 8601 date and time"),
     (["--now", "2026-02-30T10:00"], "--now '2026-02-30T10:00': expected an ISO 8601"),
     (["--window", "two"], "--window 'two': expected a whole number of hours"),
     (["--window", "0"], "--window '0': must be at least 1 hour"),
     (["--window", "-5"], "--window '-5': must be at least 1 hour"),
     (["--now", "9999-12-31T12:00", "--window", "48"], "the window must lie within the years 1 to 9999")],
)
def test_it_refuses_a_bad_now_or_window_and_flags_nothing(rupture, args, message):
    booked(rupture.session.client, timezone.now() + timedelta(hours=3))
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        run(*args)
    assert not Flag.objects.exists()


# --- settings ------------------------------------------------------------------------------

def test_it_schedules_the_sweep_with_beat(settings):
    from config.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["flag-open-ruptures"]
    assert entry["task"] == "reminders.sweep" and "reminders.sweep" in app.tasks
    assert entry["schedule"] == settings.REMINDER_SWEEP_MINUTES * 60 == 300
    assert entry["options"]["expires"] <= entry["schedule"]


def test_it_configures_celery_as_a_careful_user_would(settings):
    from config.celery import app

    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    options = conf.broker_transport_options
    assert options["socket_timeout"] and options["socket_connect_timeout"]
    assert conf.task_time_limit < options["visibility_timeout"]
    assert settings.REMINDER_SWEEP_MINUTES * 60 < options["visibility_timeout"]


def test_it_refuses_a_task_time_limit_beyond_the_visibility_timeout(settings):
    from reminders.checks import check_reminder_settings

    settings.CELERY_TASK_TIME_LIMIT = 7200
    settings.REMINDER_SWEEP_MINUTES = 90

    ids = {problem.id for problem in check_reminder_settings(None)}

    assert ids - {"reminders.W001", "reminders.W002"} == {"reminders.E001", "reminders.E002"}


def test_it_warns_when_emails_would_link_to_localhost(settings):
    from reminders.checks import check_reminder_settings

    settings.DEBUG = False
    settings.RISK_PROTOCOL_URL = "https://intranet.example/risk"
    settings.SITE_URL = "http://127.0.0.1:8000"
    assert [p.id for p in check_reminder_settings(None)] == ["reminders.W001"]
    settings.SITE_URL = "https://rupture-log.example.org"
    assert check_reminder_settings(None) == []



def test_json_output_is_json_alone_whatever_the_email_backend(settings, capsys, now, rupture, client_record):
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    upcoming = make_session(client_record, starts_at=now + timedelta(hours=5), status="scheduled")
    call_command("flag_open_ruptures", "--now", now.isoformat(), "--json")
    captured = capsys.readouterr()
    assert [flag["session"] for flag in json.loads(captured.out)] == [upcoming.key]
    assert "Subject:" in captured.err  # the e-mail went to stderr, not into the JSON
