import os
from datetime import timedelta
from io import StringIO

from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Role, SupervisionLink, User
from ruptures.models import RuptureEvent
from sessions.models import Client, ClientStatus, SessionStatus, TherapySession


def test_it_builds_a_realistic_demo_clinic_once(db):
    out = StringIO()
    call_command("seed_demo", stdout=out)
    counts = [model.objects.count() for model in (User, Client, TherapySession, RuptureEvent)]
    call_command("seed_demo", stdout=out)
    assert "already present" in out.getvalue()
    assert [model.objects.count() for model in (User, Client, TherapySession, RuptureEvent)] == counts

    assert User.objects.filter(role=Role.SUPERVISOR).count() == 2
    assert User.objects.filter(role=Role.THERAPIST).count() == 8
    assert SupervisionLink.objects.active().count() == 8
    assert Client.objects.count() == 150

    # domain.md section 9: ruptures in 40-55% of held sessions, withdrawal about 3:1,
    # about one client in five drops out.
    held = TherapySession.objects.filter(status=SessionStatus.HELD)
    with_rupture = held.filter(ruptures__isnull=False).distinct().count()
    assert 0.35 <= with_rupture / held.count() <= 0.55
    withdrawal = RuptureEvent.objects.filter(kind="withdrawal").count()
    confrontation = RuptureEvent.objects.filter(kind="confrontation").count()
    assert 2.2 <= withdrawal / confrontation <= 4.5
    gone = Client.objects.exclude(status=ClientStatus.ACTIVE).count() / Client.objects.count()
    assert 0.1 <= gone <= 0.3
    # Every active client has a next session booked, so reminders have something to do.
    assert not Client.objects.filter(status=ClientStatus.ACTIVE).exclude(
        sessions__status=SessionStatus.SCHEDULED).exists()


def test_it_sets_up_and_prints_the_logins(db):
    out = StringIO()
    call_command("demo", "--no-serve", stdout=out)
    text = out.getvalue()
    assert "http://127.0.0.1:8000/" in text
    assert "dlee" in text and "mokafor" in text and "rupture-demo-2026" in text
    assert User.objects.get(username="dlee").check_password("rupture-demo-2026")
    # The demo sweeps once, so reminders are there at the first sign-in.
    from reminders.models import Flag

    assert Flag.objects.filter(session__therapist__username="dlee").exists()


def test_it_says_which_roles_need_a_second_factor_on_the_server_it_starts(monkeypatch, settings):
    """The server runs with serving_environment(), not with this process's settings: a
    deployment's own key in the environment must not make the printout claim more."""
    from sessions.management.commands.demo import Command

    settings.MFA_REQUIRED_ROLES = ["therapist", "supervisor", "admin"]
    monkeypatch.delenv("MFA_REQUIRED_ROLES", raising=False)
    out = StringIO()
    Command(stdout=out)._print_logins("127.0.0.1:8000", serving=True)
    assert "required here for: supervisor, admin;" in out.getvalue()

    out = StringIO()
    Command(stdout=out)._print_logins("127.0.0.1:8000", serving=False)
    assert "required here for: therapist, supervisor, admin;" in out.getvalue()


def test_it_keeps_the_history_of_the_demo_clinic_from_its_creation(db):
    from ruptures.history import history_of

    call_command("seed_demo", stdout=StringIO())
    rupture = RuptureEvent.objects.select_related("created_by").first()
    assert [e.what for e in history_of(rupture)] == ["logged"]
    RuptureEvent.objects.filter(pk=rupture.pk).update(intensity=5 if rupture.intensity != 5 else 4)
    assert [e.what for e in history_of(rupture)] == ["logged", "changed"]


def test_it_says_who_logged_a_rupture_whose_creation_was_not_snapshotted(rupture):
    import pgtrigger

    from ruptures.history import history_of
    from tests.factories import make_rupture

    with pgtrigger.ignore("ruptures.RuptureEvent:insert_insert"):
        bare = make_rupture(rupture.session)
    RuptureEvent.objects.filter(pk=bare.pk).update(intensity=5)
    entries = history_of(bare)
    assert [(e.by, e.what) for e in entries][0] == ("Dana Lee", "logged")
    assert "changed (the values before were not recorded)" in [e.what for e in entries]


def test_it_never_marks_a_session_still_to_come_as_held_missed_or_cancelled(db):
    from datetime import UTC, datetime

    from sessions.demo import Scale, build_demo_clinic

    # Mid-morning: many clients' weekly slot is later today.
    now = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)
    build_demo_clinic(Scale(supervisors=2, therapists=8, clients=120, weeks=6), now=now)

    later = TherapySession.objects.filter(starts_at__gt=now)
    assert later.filter(starts_at__date=now.date()).exists()
    assert set(later.values_list("status", flat=True)) == {SessionStatus.SCHEDULED}
    assert not RuptureEvent.objects.filter(session__starts_at__gt=now).exists()


def test_it_serves_the_demo_with_debug_off_and_its_static_files(tmp_path):
    import json
    import subprocess
    import sys

    from sessions.management.commands.demo import serving_environment

    unset = ("DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_ALLOWED_HOSTS", "MFA_REQUIRED_ROLES", "DJANGO_SITE_URL")
    env = serving_environment("0.0.0.0:8001", environ={k: v for k, v in os.environ.items() if k not in unset})
    assert env["DJANGO_ALLOWED_HOSTS"] == "*"
    probe = (
        "import json, django; django.setup(); from django.conf import settings as s;"
        "from django.test import Client;"
        "css = Client().get('/static/css/app.css', HTTP_HOST='192.0.2.7:8001');"
        "print(json.dumps([s.DEBUG, s.WHITENOISE_USE_FINDERS, getattr(s, 'SECURE_SSL_REDIRECT', False),"
        " getattr(s, 'SESSION_COOKIE_SECURE', False), s.ALLOWED_HOSTS, s.MFA_REQUIRED_ROLES, css.status_code]))"
    )
    out = subprocess.run([sys.executable, "-c", probe], env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
                         capture_output=True, text=True, check=True, cwd=settings.BASE_DIR)
    # Debug off, so a 404 or 500 is the app's own page; static files straight from static/.
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [
        False, True, False, False, ["*"], ["supervisor", "admin"], 200
    ]
    # ...with no collected folder looked for: a new user's first start prints no warning.
    assert "No directory at" not in out.stderr
    assert "DJANGO_SITE_URL" not in env  # on every interface: the address is not known here
    local = serving_environment("127.0.0.1:8001", environ={})
    assert local["DJANGO_ALLOWED_HOSTS"] == "127.0.0.1,[::1],localhost"
    # Reminder e-mails link to the demo server itself, unless the site's address is set.
    assert local["DJANGO_SITE_URL"] == "http://127.0.0.1:8001"
    assert serving_environment("127.0.0.1:8001", environ={"DJANGO_SITE_URL": "https://x.org"})["DJANGO_SITE_URL"] == "https://x.org"


def test_it_resets_only_the_embedded_database(db, settings):
    import pytest
    from django.core.management.base import CommandError

    settings.EMBEDDED_DATABASE = False
    with pytest.raises(CommandError, match="DATABASE_URL points elsewhere: nothing was changed"):
        call_command("demo", "--reset", "--no-serve", stdout=StringIO())


def test_it_empties_a_database_to_start_again(db):
    import psycopg
    from psycopg.conninfo import make_conninfo

    from config.embedded_db import recreate_database

    base = settings.DATABASES["default"]
    server = {"host": base["HOST"], "port": base["PORT"] or None, "user": base["USER"]}
    scratch = f"{base['NAME']}_reset_probe"
    maintenance = make_conninfo(dbname="postgres", **server)
    recreate_database(maintenance, scratch)
    with psycopg.connect(make_conninfo(dbname=scratch, **server), autocommit=True) as conn:
        conn.execute("CREATE TABLE leftover (id int)")
    recreate_database(maintenance, scratch)
    with psycopg.connect(make_conninfo(dbname=scratch, **server)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'leftover'").fetchone() == (0,)
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{scratch}" WITH (FORCE)')


def test_it_prints_how_to_stop_the_embedded_database(db, settings):
    settings.EMBEDDED_DATABASE = True
    out = StringIO()
    call_command("demo", "--no-serve", "8002", stdout=out)
    assert "http://127.0.0.1:8002/" in out.getvalue()
    assert "uv run python -m config.embedded_db stop" in out.getvalue()


def test_the_demo_clinic_has_checks_from_both_sides(db, shipped_instruments):
    from checks.models import AllianceCheck
    from reminders.models import Flag

    call_command("demo", "--no-serve", stdout=StringIO())
    held = TherapySession.objects.filter(status=SessionStatus.HELD).count()
    therapist = AllianceCheck.objects.therapist().count() / held
    client_checks = AllianceCheck.objects.client()
    assert 0.8 <= therapist <= 0.97  # nearly always (recent unlogged sessions wait)
    assert 0.5 <= client_checks.count() / held <= 0.7
    answered = client_checks.answered()
    client_rate = answered.filter(client_reported_rupture=True).count() / answered.count()
    therapist_checks = AllianceCheck.objects.therapist()
    therapist_rate = therapist_checks.filter(tension="yes").count() / therapist_checks.count()
    # domain.md section 9: clients report fewer ruptures (19-42%) than therapists.
    assert 0.19 <= client_rate <= 0.42 and client_rate < therapist_rate
    assert client_checks.filter(declined=True).exists() and AllianceCheck.objects.unlogged().exists()
    assert Flag.objects.filter(reason__in=["unlogged", "drop"]).exists()


def test_it_dates_the_history_from_the_moment_asked(db):
    """bench/bench_pages.py builds its two clinics from one moment, so that the same user
    has the same caseload in both whenever each was built."""
    from datetime import UTC, datetime

    as_of = datetime(2026, 11, 30, 16, 27, tzinfo=UTC)
    call_command("seed_demo", "--as-of", as_of.isoformat(), stdout=StringIO())
    assert set(Client.objects.values_list("created_at", flat=True)) == {as_of}
    sessions = TherapySession.objects.all()
    assert not sessions.filter(starts_at__gt=as_of).exclude(status=SessionStatus.SCHEDULED).exists()
    assert sessions.filter(starts_at__gt=as_of).exists() and sessions.filter(starts_at__lte=as_of).exists()


def test_it_refuses_a_moment_it_cannot_read_or_still_to_come_and_builds_nothing(db):
    import pytest
    from django.core.management import CommandError

    for raw, message in [("yesterday", "is not a date and time"), ("2999-01-01T09:00", "from the future")]:
        with pytest.raises(CommandError, match=message):
            call_command("seed_demo", "--as-of", raw, stdout=StringIO())
    assert not Client.objects.exists()


def test_each_supervisor_oversees_a_block_of_therapists_in_order(db):
    # So supervisor001 oversees therapist001-010 in the large clinic and in the one four
    # times larger: the benchmark's dashboard compares the same caseloads.
    call_command("seed_demo", stdout=StringIO())
    links = SupervisionLink.objects.active().order_by("therapist__pk")
    assert [(link.supervisor.username, link.therapist.username) for link in links] == [
        ("mokafor", "dlee"), ("mokafor", "apatel"), ("mokafor", "jmorales"), ("mokafor", "kchen"),
        ("rlindqvist", "snowak"), ("rlindqvist", "tadeyemi"), ("rlindqvist", "lhughes"), ("rlindqvist", "mrossi"),
    ]


def test_supervisors_have_discussed_some_ruptures_the_more_intense_more_often(db):
    # The pages that read notes (the therapist's home, "not yet discussed") are measured
    # on a clinic that has them: each by the therapist's own supervisor, after the
    # rupture's session and before the moment the demo is dated from.
    from datetime import UTC, datetime

    from supervision.models import SupervisionNote

    as_of = datetime(2026, 11, 30, 16, 27, tzinfo=UTC)
    call_command("seed_demo", "--as-of", as_of.isoformat(), stdout=StringIO())
    notes = SupervisionNote.objects.select_related("rupture__session__client")
    supervisor_of = dict(SupervisionLink.objects.values_list("therapist", "supervisor"))
    for note in notes:
        session = note.rupture.session
        assert note.supervisor_id == supervisor_of[session.client.therapist_id]
        assert session.starts_at < note.created_at <= as_of
        assert note.comment.strip()
        written = timezone.localtime(note.created_at)
        assert written.weekday() < 5 and 9 <= written.hour < 17
    discussed = RuptureEvent.objects.filter(supervision_notes__isnull=False).distinct()
    share = discussed.count() / RuptureEvent.objects.count()
    assert 0.15 <= share <= 0.4
    mild, intense = (
        discussed.filter(intensity__in=levels).count() / RuptureEvent.objects.filter(intensity__in=levels).count()
        for levels in ([1, 2], [4, 5])
    )
    assert mild < intense
    # Some within the fortnight the therapist's home shows them for.
    assert notes.filter(created_at__gte=as_of - timedelta(days=14)).exists()
