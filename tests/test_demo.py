from io import StringIO

from django.core.management import call_command

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
