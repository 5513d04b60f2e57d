"""Flags from the clients' checks (§8a): unlogged client-reported ruptures and drops."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from reminders.models import Flag
from reminders.sweep import sweep
from sessions.models import SessionStatus
from tests.factories import make_check, make_rupture, make_session


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def upcoming(client_record):
    return make_session(client_record, starts_at=timezone.now() + timedelta(hours=20), status=SessionStatus.SCHEDULED)


def test_it_flags_a_client_reported_rupture_the_therapist_did_not_log(now, held_session, upcoming,
                                                                     shipped_instruments):
    check = make_check(held_session, "client", tension="yes", intensity=2, together=4)
    make_check(held_session, "therapist", tension="no", together=5)
    result = sweep(now=now)
    assert [(f.reason, f.check, f.session, f.escalated) for f in result.raised] == [
        ("unlogged", check.key, upcoming.key, False)]
    flag = Flag.objects.get()
    assert (flag.reason, flag.alliance_check, flag.session, flag.rupture) == ("unlogged", check, upcoming, None)
    assert sweep(now=now).raised == ()  # one per (check, session)


@pytest.mark.parametrize("intensity", [4, 5])
def test_it_escalates_at_the_clients_intensity_4_or_5(now, held_session, upcoming, shipped_instruments, intensity):
    make_check(held_session, "client", tension="yes", intensity=intensity, worked_through=3, together=3)
    sweep(now=now)
    flag = Flag.objects.get()
    assert flag.escalated and flag.escalation_reason == "client's intensity 4-5"


def test_it_does_not_flag_what_the_therapist_logged_or_saw(now, client_record, upcoming, shipped_instruments):
    logged = make_session(client_record, days_ago=3)
    make_check(logged, "client", tension="yes", together=4)
    make_rupture(logged)
    seen = make_session(client_record, days_ago=2)
    make_check(seen, "client", tension="yes", together=4)
    make_check(seen, "therapist", tension="yes", intensity=2, together=4)
    quiet = make_session(client_record, days_ago=1)
    make_check(quiet, "client", tension="no", together=5)
    declined = make_session(client_record, days_ago=0.5)
    make_check(declined, "client", declined=True)
    assert [f.reason for f in sweep(now=now).raised if f.reason != "rupture"] == []


def test_it_flags_a_drop_before_the_next_session_only(now, client_record, upcoming, shipped_instruments):
    before = make_session(client_record, days_ago=8)
    make_check(before, "client", tension="no", together=5)
    last = make_session(client_record, days_ago=1)
    dropped = make_check(last, "client", tension="no", together=3)
    raised = sweep(now=now).raised
    assert [(f.reason, f.check) for f in raised] == [("drop", dropped.key)]
    assert raised[0].escalated is False
    # A session held since: the drop belongs to an older session and is not raised again.
    later = make_session(client_record, starts_at=timezone.now() + timedelta(hours=30),
                         status=SessionStatus.SCHEDULED)
    make_session(client_record, starts_at=timezone.now() + timedelta(hours=25))
    assert [f.session for f in sweep(now=now).raised if f.session == later.key] == []


def test_a_one_point_dip_is_no_drop(now, client_record, upcoming, shipped_instruments):
    make_check(make_session(client_record, days_ago=8), "client", tension="no", together=5)
    make_check(make_session(client_record, days_ago=1), "client", tension="no", together=4)
    assert sweep(now=now).raised == ()


def test_an_unlogged_rupture_that_is_also_a_drop_is_flagged_once(now, client_record, upcoming, shipped_instruments):
    make_check(make_session(client_record, days_ago=8), "client", tension="no", together=5)
    make_check(make_session(client_record, days_ago=1), "client", tension="yes", together=2)
    assert [f.reason for f in sweep(now=now).raised] == ["unlogged"]


def test_a_deleted_check_raises_nothing_and_its_flag_leaves_the_pages(now, held_session, upcoming, therapist,
                                                                      shipped_instruments):
    check = make_check(held_session, "client", tension="yes", together=4)
    sweep(now=now)
    assert Flag.objects.upcoming().count() == 1
    check.soft_delete(by=therapist, reason="wrong client")
    assert Flag.objects.upcoming().count() == 0
    assert Flag.all_objects.count() == 1  # hidden with its check (the deletion cascade), never erased


def test_a_flag_of_a_deleted_sessions_check_leaves_the_pages(now, held_session, upcoming, therapist,
                                                             shipped_instruments):
    make_check(held_session, "client", tension="yes", together=4)
    sweep(now=now)
    held_session.soft_delete(by=therapist, reason="entered twice")
    assert Flag.objects.upcoming().count() == 0 and Flag.objects.open().count() == 0


def test_the_json_entries_carry_the_reason_and_the_check(now, held_session, upcoming, shipped_instruments):
    check = make_check(held_session, "client", tension="yes", intensity=5, together=2)
    rupture_session = make_session(held_session.client, days_ago=2)
    rupture = make_rupture(rupture_session)
    out = StringIO()
    call_command("flag_open_ruptures", "--json", stdout=out)
    entries = json.loads(out.getvalue())
    assert {"reason": "unlogged", "check": check.key, "session": upcoming.key, "client": "C-0001",
            "therapist": "dlee", "escalated": True} in entries
    # Carried over: the held session of the check lies between the rupture's and the next.
    assert {"reason": "rupture", "rupture": rupture.key, "session": upcoming.key, "client": "C-0001",
            "therapist": "dlee", "escalated": True} in entries


def test_check_flags_are_emailed_like_rupture_flags(now, held_session, upcoming, supervisor, shipped_instruments):
    make_check(held_session, "client", tension="yes", intensity=4, together=3)
    result = sweep(now=now)
    assert result.notified.flags == 1 and result.notified.escalations == 1
    assert len(mail.outbox) == 2
    assert all("C-0001" not in m.body and "tension" not in m.body for m in mail.outbox)
    assert Flag.objects.get().notified_at is not None


def test_the_home_page_and_the_brief_show_the_clients_voice(as_therapist, held_session, upcoming,
                                                             shipped_instruments):
    make_check(held_session, "client", tension="yes", intensity=4, together=3, say_more="Felt unheard today.")
    sweep()
    home = as_therapist.get("/").content.decode()
    assert "Client-reported rupture, not logged" in home and f"/sessions/{held_session.pk}/#check-h" in home
    brief = as_therapist.get(f"/sessions/{upcoming.pk}/brief").content.decode()
    assert "The client&#x27;s voice" in brief or "The client's voice" in brief
    assert "Felt unheard today." in brief and "escalated: client&#x27;s intensity 4-5" in brief


def test_the_supervisor_sees_escalated_check_flags(as_supervisor, held_session, upcoming, shipped_instruments):
    make_check(held_session, "client", tension="yes", intensity=5, together=2)
    sweep()
    assert "Client-reported rupture, not logged" in as_supervisor.get("/").content.decode()


def test_the_home_counts_a_checks_flag_apart_from_open_ruptures(as_therapist, now, held_session, upcoming,
                                                                shipped_instruments):
    make_check(held_session, "client", tension="yes", intensity=2, together=4)
    make_check(held_session, "therapist", tension="no", together=5)
    make_rupture(make_session(held_session.client, days_ago=9))
    sweep(now=now)
    assert sorted(Flag.objects.values_list("reason", flat=True)) == ["rupture", "unlogged"]

    html = as_therapist.get("/").content.decode()
    assert ('id="flags-h"><span class="count">1</span> open rupture and <span class="count">1</span> client check '
            "flagged before these sessions") in html
