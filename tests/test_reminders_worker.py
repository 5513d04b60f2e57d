"""The sweep through a real Redis and a real Celery worker, both started by these tests.

Each test owns a redis-server on a free port (in memory only) and a worker in its own
process group, and stops exactly those. The worker reaches the test database, so the
tests are transactional: what they write is committed, and the worker sees it.
"""

import email
import logging
import os
import shutil
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.db import connection
from django.utils import timezone

from reminders.models import Flag, SweepHeartbeat
from reminders.tasks import sweep
from ruptures.models import RuptureEvent
from sessions.models import SessionStatus
from tests.brokers import CeleryWorker, RedisServer, publishing_to, wait_until
from tests.factories import make_client, make_rupture, make_session

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server here"),
]

PAUSE_SECONDS = 1.5  # how long a sweep waits between its flags and its e-mails, when asked


def database_url():
    """The test database's URL for the worker, whichever server the tests are on.

    The embedded server listens on a socket folder, not a port: HOST is then a path,
    which dj-database-url reads back from a percent-encoded host.
    """
    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    host = quote(db["HOST"] or "", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgresql://{user}{password}@{host}{port}/{quote(db['NAME'], safe='')}"


@pytest.fixture
def broker():
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mail_dir(tmp_path):
    path = tmp_path / "mail"
    path.mkdir()
    return path


@pytest.fixture
def pause_file(tmp_path):
    return tmp_path / "paused"


@pytest.fixture
def worker_factory(broker, mail_dir, tmp_path, pause_file):
    """Workers on the test database and this test's Redis, all stopped at the end."""
    started = []

    def make(*, pause=False):
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": broker.url,
            "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "DJANGO_EMAIL_FILE_PATH": str(mail_dir),
        }
        if pause:
            env.update(REMINDERS_TEST_PAUSE_SECONDS=str(PAUSE_SECONDS), REMINDERS_TEST_PAUSE_FILE=str(pause_file))
        worker = CeleryWorker(env, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        worker.start()
        return worker

    yield make
    for worker in started:
        worker.stop()


def emails(mail_dir):
    """Every message the workers' file-based e-mail backend wrote."""
    messages = []
    for path in sorted(mail_dir.iterdir()):
        for chunk in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
            if chunk.strip():
                messages.append(email.message_from_bytes(chunk))
    return messages


@pytest.fixture
def caseload(role_groups, supervisor, therapist):
    """Two open ruptures before a session in five hours: one of them intense."""
    now = timezone.now()
    client = make_client(therapist, code="C-0042")
    last_week = make_session(client, starts_at=now - timedelta(days=7))
    ruptures = [make_rupture(last_week, intensity=5), make_rupture(last_week, intensity=2)]
    upcoming = make_session(client, starts_at=now + timedelta(hours=5), status=SessionStatus.SCHEDULED)
    return ruptures, upcoming


def all_flagged_and_emailed(expected):
    flags = list(Flag.objects.values_list("notified_at", "escalated", "escalation_notified_at"))
    done = len(flags) == expected and all(
        notified and (not escalated or escalation_notified) for notified, escalated, escalation_notified in flags
    )
    return done


def assert_one_flag_and_one_email_each(caseload, mail_dir):
    ruptures, upcoming = caseload
    assert sorted(Flag.objects.values_list("rupture_id", "session_id")) == sorted(
        (r.pk, upcoming.pk) for r in ruptures
    )
    sent = emails(mail_dir)
    assert sorted((m["To"], m["Subject"]) for m in sent) == [
        ("dlee@clinic.example", "2 open ruptures to review before your next session"),
        ("mokafor@clinic.example", "1 escalated rupture among your supervisees' clients"),
    ]


def test_it_flags_and_emails_through_the_worker(caseload, broker, worker_factory, mail_dir):
    worker = worker_factory()

    with publishing_to(broker.url):
        sweep.delay(now_iso=timezone.now().isoformat())

    # The heartbeat is the sweep's last write, committed after the e-mails went: wait for it
    # too, or a loaded machine reads between the two.
    wait_until(lambda: all_flagged_and_emailed(2) and SweepHeartbeat.objects.exists(), timeout=30,
               what=f"the sweep\n{worker.log()}")
    assert_one_flag_and_one_email_each(caseload, mail_dir)
    assert SweepHeartbeat.objects.get().raised == 2
    # The task hands the worker's log counts, never a key or a case code.
    assert "'raised': 2" in worker.log()
    assert "C-0042" not in worker.log()


def test_it_gives_one_flag_and_one_email_when_the_sweeping_process_is_killed(
    caseload, broker, worker_factory, mail_dir, pause_file
):
    worker = worker_factory(pause=True)

    with publishing_to(broker.url):
        sweep.delay(now_iso=timezone.now().isoformat())
        victim = int(wait_until(lambda: pause_file.exists() and pause_file.read_text(), timeout=30,
                                what=f"the sweep to reach its pause\n{worker.log()}"))
        # Half-way: the flags are committed, no e-mail is claimed yet.
        assert Flag.objects.count() == 2
        assert not Flag.objects.filter(claimed_at__isnull=False).exists()
        os.kill(victim, 9)  # the pool process running the sweep: SIGKILL

        # acks_late and reject_on_worker_lost: the worker hands the task back to Redis
        # and a fresh pool process runs it again from the start.
        wait_until(lambda: all_flagged_and_emailed(2), timeout=30, what=f"the sweep to run again\n{worker.log()}")

    assert int(pause_file.read_text()) != victim
    assert "SIGKILL" in worker.log()
    assert_one_flag_and_one_email_each(caseload, mail_dir)


def test_it_gives_one_flag_and_one_email_when_the_whole_worker_is_killed_and_restarted(
    caseload, broker, worker_factory, mail_dir, pause_file
):
    worker = worker_factory(pause=True)
    now_iso = timezone.now().isoformat()

    with publishing_to(broker.url):
        sweep.delay(now_iso=now_iso)
        wait_until(pause_file.exists, timeout=30, what=f"the sweep to reach its pause\n{worker.log()}")
        worker.kill()
        assert Flag.objects.count() == 2
        assert not Flag.objects.filter(claimed_at__isnull=False).exists()

        restarted = worker_factory()
        # Redis hands the unacknowledged task out again only after the visibility
        # timeout (an hour); meanwhile beat's next sweep runs. Both are sent here: the
        # same sweep again, as the redelivery would be, and a sweep at the clock.
        sweep.delay(now_iso=now_iso)
        sweep.delay()
        wait_until(lambda: all_flagged_and_emailed(2), timeout=30, what=f"the sweeps\n{restarted.log()}")
        wait_until(lambda: restarted.log().count("succeeded in") == 2, timeout=30,
                   what=f"both sweeps to finish\n{restarted.log()}")

    assert_one_flag_and_one_email_each(caseload, mail_dir)


def test_it_saves_a_rupture_while_redis_is_down_and_flags_it_once_redis_is_back(
    role_groups, as_therapist, client_record, broker, worker_factory, mail_dir, caplog
):
    now = timezone.now()
    last_session = make_session(client_record, starts_at=now - timedelta(days=1))
    upcoming = make_session(client_record, starts_at=now + timedelta(hours=5), status=SessionStatus.SCHEDULED)
    form = {"kind": "withdrawal", "actor": "client", "markers": ["topic_shift"], "intensity": "3",
            "source": "unknown", "plan": "Ask what the silence was about."}

    with publishing_to(broker.url):
        broker.stop()
        with caplog.at_level(logging.WARNING, logger="reminders.services"):
            response = as_therapist.post(f"/sessions/{last_session.pk}/ruptures/new", form)

        rupture = RuptureEvent.objects.get()
        assert response.status_code == 302
        assert response["Location"] == f"/ruptures/{rupture.pk}/"
        assert rupture.plan == "Ask what the silence was about."
        assert "Could not enqueue a reminder sweep" in caplog.text
        assert not Flag.objects.exists()

        broker.start()
        worker = worker_factory()
        sweep.delay()  # beat's next sweep
        wait_until(lambda: all_flagged_and_emailed(1), timeout=30, what=f"the sweep\n{worker.log()}")

    assert list(Flag.objects.values_list("rupture_id", "session_id")) == [(rupture.pk, upcoming.pk)]
    assert [m["To"] for m in emails(mail_dir)] == ["dlee@clinic.example"]


def test_it_gives_the_worker_the_connection_settings_of_the_tests():
    import dj_database_url

    worker_db = dj_database_url.parse(database_url())
    for key in ("NAME", "USER", "PASSWORD", "HOST"):
        assert (worker_db[key] or "") == (connection.settings_dict[key] or "")
    assert str(worker_db["PORT"] or "") == str(connection.settings_dict["PORT"] or "")
