"""Invariants the database itself enforces, so that imports and raw SQL obey them too."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import SupervisionLink
from ruptures.models import RuptureEvent
from sessions.models import TherapySession, new_key
from tests.factories import make_attempt, make_client, make_rupture, make_session, supervise


def refuses(fn):
    with pytest.raises(IntegrityError), transaction.atomic():
        fn()
    return True


def test_it_refuses_intensity_outside_1_to_5(held_session):
    assert refuses(lambda: make_rupture(held_session, intensity=0))
    assert refuses(lambda: make_rupture(held_session, intensity=6))
    assert make_rupture(held_session, intensity=5).intensity == 5


def test_it_refuses_a_client_side_rupture_without_markers(held_session):
    assert refuses(lambda: make_rupture(held_session, actor="client", markers=[]))


def test_it_allows_a_therapist_side_rupture_without_markers(held_session):
    rupture = make_rupture(held_session, actor="therapist", markers=[])
    assert rupture.pk


def test_it_refuses_unknown_slugs_in_every_vocabulary_column(held_session):
    assert refuses(lambda: make_rupture(held_session, markers=["sulking"]))
    assert refuses(lambda: make_rupture(held_session, kind="grumpy"))
    assert refuses(lambda: make_rupture(held_session, source="astrology"))
    assert refuses(lambda: make_rupture(held_session, internal_signals=["hungry"]))
    assert refuses(lambda: make_rupture(held_session, repair_status="forgotten"))


def test_it_refuses_an_attempt_with_the_unaddressed_outcome(rupture):
    assert refuses(lambda: make_attempt(rupture, outcome="unaddressed"))


def test_it_refuses_an_attempt_in_another_clients_session(rupture, therapist):
    elsewhere = make_session(make_client(therapist), days_ago=0)
    assert refuses(lambda: make_attempt(rupture, session=elsewhere))


def test_it_refuses_an_attempt_in_a_session_before_the_rupture(rupture, client_record):
    earlier = make_session(client_record, days_ago=8)
    assert refuses(lambda: make_attempt(rupture, session=earlier))


def test_it_refuses_moving_an_attempt_to_another_client_by_raw_sql(rupture, therapist):
    attempt = make_attempt(rupture)
    elsewhere = make_session(make_client(therapist), days_ago=0)

    def move():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE ruptures_repairattempt SET session_id = %s WHERE id = %s", [elsewhere.pk, attempt.pk]
            )

    assert refuses(move)


def test_it_accepts_an_attempt_in_a_later_session_of_the_same_client(rupture, client_record):
    later = make_session(client_record, days_ago=0)
    assert make_attempt(rupture, session=later).session == later


def test_it_refuses_session_length_out_of_range(client_record):
    assert refuses(lambda: make_session(client_record, duration_minutes=0))


def test_it_refuses_two_open_supervision_links_for_one_therapist(supervisor, therapist, other_supervisor):
    assert refuses(lambda: supervise(other_supervisor, therapist))


def test_it_ends_supervision_on_the_end_date(supervisor, therapist, client_record):
    link = SupervisionLink.objects.get(supervisor=supervisor)
    link.ends_on = timezone.localdate() - timedelta(days=1)
    link.save(update_fields=["ends_on"])
    assert not client_record.__class__.objects.visible_to(supervisor).exists()


def test_it_counts_only_unaddressed_attempted_and_unresolved_as_open(held_session):
    for status in ["unaddressed", "attempted", "partially_resolved", "resolved", "unresolved"]:
        make_rupture(held_session, repair_status=status)
    open_statuses = set(RuptureEvent.objects.open().values_list("repair_status", flat=True))
    assert open_statuses == {"unaddressed", "attempted", "unresolved"}
    assert [r.is_open for r in RuptureEvent.objects.order_by("pk")] == [True, True, False, False, True]


def test_it_scopes_records_to_the_therapist_and_their_supervisor(
    rupture, therapist, other_therapist, supervisor, other_supervisor, admin_user
):
    for user, visible in [
        (therapist, True), (supervisor, True), (other_therapist, False),
        (other_supervisor, False), (admin_user, False),
    ]:
        assert RuptureEvent.objects.visible_to(user).filter(pk=rupture.pk).exists() is visible
        assert TherapySession.objects.visible_to(user).filter(pk=rupture.session_id).exists() is visible
    assert RuptureEvent.objects.editable_by(supervisor).count() == 0


def test_it_records_who_viewed_a_clients_record(as_supervisor, rupture, supervisor):
    from audit.models import AccessEvent

    as_supervisor.get(f"/clients/{rupture.session.client.code}/")
    as_supervisor.get(f"/ruptures/{rupture.pk}/")
    events = list(AccessEvent.objects.order_by("pk").values_list("user", "action", "what", "client", "ip"))
    client_pk = rupture.session.client_id
    assert events == [
        (supervisor.pk, "view", "client", client_pk, "127.0.0.1"),
        (supervisor.pk, "view", "rupture", client_pk, "127.0.0.1"),
    ]


def test_it_refuses_to_change_or_delete_an_access_event(as_therapist, client_record):
    from audit.models import AccessEvent

    as_therapist.get(f"/clients/{client_record.code}/")
    assert refuses_raw("UPDATE audit_accessevent SET key = 'x'")
    assert refuses_raw("DELETE FROM audit_accessevent")
    assert AccessEvent.objects.count() == 1


def refuses_raw(sql):
    from django.db import DatabaseError

    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    return True


def test_the_keys_it_makes_carry_64_random_bits(held_session, rupture):
    # Keys name records in caseload files, so they must stay unique as the clinic grows:
    # at 40 bits the demo's 548,000-check clinic drew a duplicate (sessions.models.new_key).
    for key in (held_session.key, rupture.key, new_key("K")):
        prefix, _, digits = key.partition("-")
        assert len(digits) == 16 and int(digits, 16) >= 0, key
    assert len({new_key("S") for _ in range(1000)}) == 1000
