"""Deletion cascades as one recorded act, and restoring it brings back exactly what it hid."""

from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from audit.deletion import DeletionError, restore_deletion
from audit.models import Deletion
from reminders.models import Flag
from reminders.sweep import sweep
from ruptures.history import history_of
from ruptures.models import RepairAttempt, RuptureEvent
from sessions.models import Client, TherapySession
from tests.factories import make_attempt, make_rupture, make_session


@pytest.fixture
def record(client_record, held_session, rupture):
    """A client with a rupture, an attempt in a later session, and a flag before the next one."""
    later = make_session(client_record, days_ago=0)
    attempt = make_attempt(rupture, session=later)
    upcoming = make_session(client_record, days_ago=-1, status="scheduled")
    sweep(now=timezone.now(), window=timedelta(days=2))
    other = make_rupture(later, kind="confrontation", markers=["complaint_about_therapist"])
    return {"client": client_record, "session": held_session, "later": later, "upcoming": upcoming,
            "rupture": rupture, "attempt": attempt, "other": other, "flag": Flag.objects.get(rupture=rupture)}


def alive(model, obj):
    return model.objects.filter(pk=obj.pk).exists()


def test_deleting_a_session_hides_its_ruptures_their_attempts_and_flags(record, therapist):
    deletion = record["session"].soft_delete(by=therapist, reason="Wrong client.")
    assert not alive(TherapySession, record["session"])
    assert not alive(RuptureEvent, record["rupture"])
    assert not alive(RepairAttempt, record["attempt"])
    assert not alive(Flag, record["flag"])
    assert alive(TherapySession, record["later"]) and alive(RuptureEvent, record["other"])
    assert Deletion.objects.count() == 1
    assert deletion.hidden == {"therapy_sessions.therapysession": 1, "ruptures.ruptureevent": 1,
                               "ruptures.repairattempt": 1, "reminders.flag": 1}
    for model in (TherapySession, RuptureEvent, RepairAttempt, Flag):
        hidden = model.all_objects.filter(deleted_at__isnull=False)
        assert set(hidden.values_list("deletion", "deletion_reason", "deleted_by")) == {
            (deletion.pk, "Wrong client.", therapist.pk)
        }
    assert (deletion.record_type, deletion.record_key, deletion.client_id) == (
        "therapy_sessions.therapysession", record["session"].key, record["client"].pk
    )


def test_deleting_the_session_an_attempt_was_recorded_in_hides_that_attempt(record, therapist):
    record["later"].soft_delete(by=therapist, reason="Never took place.")
    assert not alive(RepairAttempt, record["attempt"])
    assert alive(RuptureEvent, record["rupture"])
    assert not alive(RuptureEvent, record["other"])


def test_deleting_a_client_hides_everything_of_theirs(record, therapist):
    deletion = record["client"].soft_delete(by=therapist, reason="Test record.")
    assert Client.objects.count() == TherapySession.objects.count() == 0
    assert RuptureEvent.objects.count() == RepairAttempt.objects.count() == Flag.objects.count() == 0
    assert deletion.hidden["therapy_sessions.therapysession"] == 3
    assert deletion.hidden["ruptures.ruptureevent"] == 2


def test_restoring_brings_back_exactly_what_the_deletion_hid(record, therapist):
    earlier = record["other"].soft_delete(by=therapist, reason="Logged twice.")
    deletion = record["client"].soft_delete(by=therapist, reason="Test record.")
    restored = restore_deletion(deletion=deletion, by=therapist, reason="Deleted the wrong client.")
    assert restored["therapy_sessions.client"] == 1
    assert alive(Client, record["client"]) and alive(RuptureEvent, record["rupture"])
    assert alive(RepairAttempt, record["attempt"]) and alive(Flag, record["flag"])
    # Deleted separately before: stays deleted, under its own deletion.
    other = RuptureEvent.all_objects.get(pk=record["other"].pk)
    assert (other.deleted_at is not None, other.deletion_id) == (True, earlier.pk)
    deletion.refresh_from_db()
    assert (deletion.restored_by, deletion.restore_reason) == (therapist, "Deleted the wrong client.")
    with pytest.raises(DeletionError, match="already undone"):
        restore_deletion(deletion=deletion, by=therapist, reason="again")


def test_a_record_cannot_come_back_inside_a_deleted_parent(record, therapist):
    first = record["rupture"].soft_delete(by=therapist, reason="Not a rupture.")
    record["session"].soft_delete(by=therapist, reason="Wrong client.")
    with pytest.raises(DeletionError, match="restore that first"):
        restore_deletion(deletion=first, by=therapist, reason="It was one after all.")
    assert not alive(RuptureEvent, record["rupture"])


def test_a_restore_leaves_hidden_what_hangs_from_another_record_deleted_since(record, therapist):
    """The attempt was tried in a later session: deleted with its rupture, then that
    session was deleted too. Restoring the rupture must not bring the attempt back into a
    deleted session; restoring the session then does."""
    from strategies.models import TrackRecord

    first = record["rupture"].soft_delete(by=therapist, reason="Not a rupture.")
    second = record["later"].soft_delete(by=therapist, reason="Never took place.")

    restored = restore_deletion(deletion=first, by=therapist, reason="It was one after all.")

    assert restored == {"ruptures.ruptureevent": 1, "reminders.flag": 1}
    assert alive(RuptureEvent, record["rupture"]) and not alive(RepairAttempt, record["attempt"])
    assert RepairAttempt.all_objects.get(pk=record["attempt"].pk).deletion_id == second.pk
    assert not TrackRecord.objects.filter(attempts__gt=0).exists()

    restore_deletion(deletion=second, by=therapist, reason="It did take place.")
    assert alive(RepairAttempt, record["attempt"]) and alive(RuptureEvent, record["other"])
    assert TrackRecord.objects.filter(attempts__gt=0).exists()


def test_both_acts_are_in_the_ruptures_history(record, therapist):
    deletion = record["session"].soft_delete(by=therapist, reason="Wrong client.")
    restore_deletion(deletion=deletion, by=therapist, reason="Right client after all.")
    entries = [(e.what, e.comment) for e in history_of(RuptureEvent.objects.get(pk=record["rupture"].pk))]
    assert (f"deleted with its session {record['session'].key}", "Wrong client.") in entries
    assert ("restored", "Right client after all.") in entries
    # The bookkeeping columns are not shown as changes of the rupture itself.
    assert all(e.what != "changed" for e in history_of(RuptureEvent.objects.get(pk=record["rupture"].pk)))


def test_the_therapist_deletes_a_client_and_restores_it_from_the_web(as_therapist, record):
    code = record["client"].code
    response = as_therapist.post(f"/clients/{code}/delete", {"reason": "Test record."})
    assert response.status_code == 302
    assert as_therapist.get(f"/clients/{code}/").status_code == 404
    listing = as_therapist.get("/deletions/").content.decode()
    assert "Test record." in listing and code in listing
    deletion = Deletion.objects.get()
    refused = as_therapist.post(f"/deletions/{deletion.pk}/restore", {"reason": "  "})
    assert refused.status_code == 400 and not alive(Client, record["client"])
    assert as_therapist.post(f"/deletions/{deletion.pk}/restore", {"reason": "Mistake."}).status_code == 302
    assert as_therapist.get(f"/clients/{code}/").status_code == 200
    assert "Nothing deleted." in as_therapist.get("/deletions/").content.decode()


def test_a_restore_the_parent_blocks_is_explained_beside_the_form(as_therapist, record, therapist):
    first = record["rupture"].soft_delete(by=therapist, reason="Not a rupture.")
    record["session"].soft_delete(by=therapist, reason="Wrong client.")
    response = as_therapist.post(f"/deletions/{first.pk}/restore", {"reason": "It was."})
    assert response.status_code == 400
    assert "restore that first" in response.content.decode()


def test_no_one_else_restores(as_other_therapist, record, therapist):
    deletion = record["client"].soft_delete(by=therapist, reason="Test record.")
    assert as_other_therapist.get("/deletions/").content.decode().count("Test record.") == 0
    assert as_other_therapist.post(f"/deletions/{deletion.pk}/restore", {"reason": "x"}).status_code == 404
    assert not alive(Client, record["client"])


def test_an_admin_restores_by_key_with_restore_record(record, therapist, admin_user, capsys):
    record["session"].soft_delete(by=therapist, reason="Wrong client.")
    with pytest.raises(CommandError, match="deleted with its session"):
        call_command("restore_record", "rupture", record["rupture"].key, reason="x", by="admin")
    with pytest.raises(CommandError, match="not an active clinic admin"):
        call_command("restore_record", "session", record["session"].key, reason="x", by=therapist.username)
    call_command("restore_record", "session", record["session"].key, reason="Restored on request.", by="admin")
    assert "Restored session" in capsys.readouterr().out
    assert alive(RuptureEvent, record["rupture"]) and alive(Flag, record["flag"])
    deletion = Deletion.objects.get()
    assert (deletion.restored_by, deletion.restore_reason) == (admin_user, "Restored on request.")
    with pytest.raises(CommandError, match="is not deleted"):
        call_command("restore_record", "session", record["session"].key, reason="x", by="admin")


def test_a_clinical_model_must_say_how_it_joins_the_cascade(monkeypatch, db):
    monkeypatch.setattr(RepairAttempt, "hidden_with", ("rupture",))
    errors = [e for e in run_checks() if e.id == "audit.E001"]
    assert [str(e.msg) for e in errors] == [
        "ruptures.RepairAttempt.session points at a clinical record but is in neither hidden_with "
        "nor not_hidden_with."
    ]


def test_the_record_of_a_deletion_is_never_erased(record, therapist):
    record["rupture"].soft_delete(by=therapist, reason="Not a rupture.")
    with pytest.raises(Exception, match="Cannot delete rows"):
        with transaction.atomic():
            Deletion.objects.all()._raw_delete(Deletion.objects.db)
    assert Deletion.objects.count() == 1


@pytest.mark.parametrize("sessions", [2, 12])
def test_deleting_and_restoring_a_client_costs_the_same_few_queries_whatever_its_size(
    client_record, therapist, sessions, django_assert_num_queries
):
    for n in range(sessions):
        rupture = make_rupture(make_session(client_record, days_ago=n + 1))
        make_attempt(rupture)
    # The Deletion, the record, one UPDATE per foreign key of the cascade, the counts.
    with django_assert_num_queries(15):
        deletion = client_record.soft_delete(by=therapist, reason="Test record.")
    assert deletion.hidden["ruptures.repairattempt"] == sessions
    # And to restore: one UPDATE per edge to keep hidden what hangs from another deleted
    # record, and one per model to bring the rest back.
    with django_assert_num_queries(22):
        restore_deletion(deletion=deletion, by=therapist, reason="Mistake.")


def test_the_migration_records_old_deletions_and_hides_what_hung_from_them(record, therapist):
    """Rows deleted before deletions were recorded: each gets a Deletion, and their children go too."""
    from django.apps import apps
    from django.db import connection

    from audit.backfill import backfill

    session = record["session"]
    with connection.cursor() as cursor:
        # The state before the migration: no deletion recorded, no cascade.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE therapy_sessions_therapysession DROP CONSTRAINT session_deletion_recorded")
        cursor.execute(
            "UPDATE therapy_sessions_therapysession SET deleted_at = now(), deleted_by_id = %s, "
            "deletion_reason = 'Booked twice.' WHERE id = %s", [therapist.pk, session.pk],
        )
    backfill(apps, "therapy_sessions.TherapySession", client="client_id", key="key", parents=["client"])
    backfill(apps, "ruptures.RuptureEvent", client="session__client_id", key="key", parents=["session"])
    backfill(apps, "ruptures.RepairAttempt", client="rupture__session__client_id", key="id",
             parents=["rupture", "session"])
    backfill(apps, "reminders.Flag", client="session__client_id", key="id", parents=["rupture", "session"])
    deletion = Deletion.objects.get()
    assert (deletion.record_key, deletion.reason, deletion.by) == (session.key, "Booked twice.", therapist)
    assert not alive(RuptureEvent, record["rupture"]) and not alive(Flag, record["flag"])
    assert RuptureEvent.all_objects.get(pk=record["rupture"].pk).deletion == deletion
    restore_deletion(deletion=deletion, by=therapist, reason="Not booked twice after all.")
    assert alive(TherapySession, session) and alive(RuptureEvent, record["rupture"])
    assert alive(RepairAttempt, record["attempt"])
