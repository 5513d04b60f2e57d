"""Stalled repairs: an open rupture with no next step is flagged, once, and escalates."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from reminders.models import Flag
from reminders.sweep import sweep
from sessions.models import ClientStatus, SessionStatus
from tests.conftest import login
from tests.factories import make_client, make_rupture, make_session, make_user, supervise

DAY = timedelta(days=1)


@pytest.fixture
def start():
    """The rupture's session: a fixed instant a month ago, so sweeps can be put around it."""
    return timezone.now().replace(microsecond=0) - 30 * DAY


@pytest.fixture
def open_rupture(client_record, start):
    return make_rupture(make_session(client_record, starts_at=start))


def stalled():
    return list(Flag.objects.filter(reason="stalled").values_list("rupture_id", "session_id"))


def raised_stalled(now):
    return [f for f in sweep(now=now).raised if f.reason == "stalled"]


def test_it_waits_until_day_14_for_a_booking(open_rupture, start):
    assert raised_stalled(start + 14 * DAY - timedelta(minutes=1)) == []
    [flag] = raised_stalled(start + 14 * DAY)
    assert (flag.rupture, flag.session, flag.reason) == (open_rupture.key, None, "stalled")
    assert stalled() == [(open_rupture.pk, None)]


@pytest.mark.parametrize("status", [SessionStatus.SCHEDULED, SessionStatus.HELD])
def test_a_session_on_day_14_is_a_next_step(open_rupture, client_record, start, status):
    make_session(client_record, starts_at=start + 14 * DAY, status=status)
    assert raised_stalled(start + 15 * DAY) == []


def test_a_session_just_after_day_14_is_too_late(open_rupture, client_record, start):
    make_session(client_record, starts_at=start + 14 * DAY + timedelta(minutes=1), status=SessionStatus.SCHEDULED)
    assert len(raised_stalled(start + 14 * DAY + timedelta(seconds=30))) == 1


@pytest.mark.parametrize("status", [SessionStatus.NO_SHOW, SessionStatus.CANCELLED])
def test_a_missed_next_session_stalls_it_at_once(open_rupture, client_record, start, status):
    make_session(client_record, starts_at=start + 7 * DAY, status=status)
    make_session(client_record, starts_at=start + 10 * DAY, status=SessionStatus.HELD)
    assert len(raised_stalled(start + 7 * DAY + timedelta(hours=1))) == 1


def test_a_missed_session_after_a_held_one_is_not_the_next(open_rupture, client_record, start):
    make_session(client_record, starts_at=start + 7 * DAY, status=SessionStatus.HELD)
    make_session(client_record, starts_at=start + 12 * DAY, status=SessionStatus.NO_SHOW)
    assert raised_stalled(start + 15 * DAY) == []


def test_a_booking_made_in_time_prevents_it(open_rupture, client_record, start):
    make_session(client_record, starts_at=start + 10 * DAY, status=SessionStatus.SCHEDULED)
    assert raised_stalled(start + 9 * DAY) == []
    assert raised_stalled(start + 20 * DAY) == []


def test_a_booking_made_later_keeps_the_flag_but_takes_it_off_the_home_page(
    open_rupture, client_record, start, as_therapist
):
    sweep(now=start + 15 * DAY)
    assert as_therapist.get("/").context["stalled"].total == 1
    make_session(client_record, starts_at=timezone.now() + 2 * DAY, status=SessionStatus.SCHEDULED)
    assert raised_stalled(timezone.now()) == []
    assert stalled() == [(open_rupture.pk, None)]
    assert list(as_therapist.get("/").context["stalled"]) == []


def test_one_flag_per_rupture_whatever_makes_it_stalled(open_rupture, client_record, start):
    make_session(client_record, starts_at=start + 3 * DAY, status=SessionStatus.NO_SHOW)
    sweep(now=start + 4 * DAY)
    sweep(now=start + 20 * DAY)
    sweep(now=start + 20 * DAY, client_id=client_record.pk)
    assert stalled() == [(open_rupture.pk, None)]


@pytest.mark.parametrize("change", ["repaired", "deleted", "discharged"])
def test_only_open_ruptures_of_clients_in_therapy_stall(open_rupture, client_record, start, therapist, change):
    if change == "repaired":
        open_rupture.repair_status = "resolved"
        open_rupture.save()
    elif change == "deleted":
        open_rupture.soft_delete(by=therapist, reason="logged twice")
    else:
        client_record.status, client_record.ending = ClientStatus.DISCHARGED, "dropout"
        client_record.save()
    assert raised_stalled(start + 20 * DAY) == []


def test_a_repaired_rupture_keeps_its_flag_and_leaves_the_home_page(open_rupture, start, as_therapist):
    sweep(now=start + 15 * DAY)
    open_rupture.repair_status = "resolved"
    open_rupture.save()
    assert stalled() == [(open_rupture.pk, None)]
    assert list(as_therapist.get("/").context["stalled"]) == []


def test_the_therapist_home_shows_it(open_rupture, start, as_therapist):
    sweep(now=start + 15 * DAY)
    response = as_therapist.get("/")
    assert [f.rupture for f in response.context["stalled"]] == [open_rupture]
    assert "Stalled: no next session" in response.content.decode()


def test_it_escalates_to_the_supervisor_after_21_days(
    client_record, supervisor, as_supervisor, mailoutbox, start
):
    rupture = make_rupture(make_session(client_record, starts_at=start + 5 * DAY))
    sweep(now=start + 5 * DAY + 14 * DAY)
    assert not Flag.objects.get(rupture=rupture).escalated
    assert list(as_supervisor.get("/").context["stalled"]) == []
    sweep(now=start + 5 * DAY + 21 * DAY - timedelta(minutes=1))
    assert not Flag.objects.get(rupture=rupture).escalated
    sweep(now=start + 5 * DAY + 21 * DAY)
    assert Flag.objects.get(rupture=rupture).escalated
    assert [f.rupture for f in as_supervisor.get("/").context["stalled"]] == [rupture]
    to_supervisor = [m for m in mailoutbox if m.to == [supervisor.email]]
    assert len(to_supervisor) == 1 and "stalled" in to_supervisor[0].body
    assert client_record.code not in to_supervisor[0].body
    sweep(now=start + 5 * DAY + 22 * DAY)
    assert len([m for m in mailoutbox if m.to == [supervisor.email]]) == 1


def test_a_discharge_is_the_next_step_the_flag_waited_for(
    open_rupture, client_record, start, client, therapist, supervisor, mailoutbox
):
    sweep(now=start + 15 * DAY)
    login(client, therapist)
    assert [f.rupture for f in client.get("/").context["stalled"]] == [open_rupture]
    assert client.post(f"/clients/{client_record.code}/discharge", {"ending": "dropout"}).status_code == 302
    assert list(client.get("/").context["stalled"]) == []
    # Past day 21 now: it neither escalates nor reaches the supervisor, by page or e-mail.
    sweep(now=timezone.now())
    assert not Flag.objects.get(rupture=open_rupture).escalated
    assert not [m for m in mailoutbox if m.to == [supervisor.email]]
    login(client, supervisor)
    assert list(client.get("/").context["stalled"]) == []
    assert stalled() == [(open_rupture.pk, None)]  # kept, as history


def test_a_flag_escalated_before_the_discharge_is_never_emailed_after_it(
    open_rupture, client_record, start, client, therapist, mailoutbox
):
    # Escalated while nobody supervised the therapist: the e-mail waited for a supervisor.
    sweep(now=start + 25 * DAY)
    flag = Flag.objects.get(rupture=open_rupture)
    assert flag.escalated and flag.escalation_claimed_at is None
    client_record.status, client_record.ending = ClientStatus.DISCHARGED, "planned"
    client_record.save()
    supervisor = make_user("supervisor")
    supervise(supervisor, therapist)
    sweep()
    assert not mailoutbox
    login(client, supervisor)
    assert list(client.get("/").context["stalled"]) == []


def test_a_booking_made_after_escalation_keeps_the_supervisor_from_being_emailed(
    open_rupture, client_record, start, supervisor, as_supervisor, mailoutbox
):
    sweep(now=start + 15 * DAY)
    make_session(client_record, starts_at=timezone.now() + 2 * DAY, status=SessionStatus.SCHEDULED)
    sweep()
    assert not [m for m in mailoutbox if m.to == [supervisor.email]]
    assert list(as_supervisor.get("/").context["stalled"]) == []


def test_the_supervisors_email_says_which_escalations_have_a_session_and_which_stalled(
    open_rupture, therapist, supervisor, mailoutbox
):
    other = make_client(therapist)
    make_rupture(make_session(other, days_ago=2), intensity=5)
    make_session(other, days_ago=-1, status=SessionStatus.SCHEDULED)
    sweep()
    [message] = [m for m in mailoutbox if m.to == [supervisor.email]]
    assert message.subject == "2 escalated ruptures among your supervisees' clients"
    assert "1 open rupture with an upcoming session is escalated to you" in message.body
    assert "1 open rupture with no next session booked is escalated to you" in message.body
    assert "21 days or more" in message.body
    [(html, _)] = message.alternatives
    assert "with no next session booked" in html and "with an upcoming session" in html


def test_a_stalled_flag_alone_is_not_said_to_have_a_session(open_rupture, supervisor, mailoutbox):
    sweep()
    [message] = [m for m in mailoutbox if m.to == [supervisor.email]]
    assert "with no next session booked" in message.body
    assert "upcoming session" not in message.body + message.alternatives[0][0]


def test_a_rupture_already_21_days_old_is_escalated_when_raised(open_rupture, start):
    [flag] = raised_stalled(start + 25 * DAY)
    assert flag.escalated


def test_the_command_marks_stalled_flags_with_no_session(open_rupture, start):
    out = StringIO()
    call_command("flag_open_ruptures", "--now", (start + 15 * DAY).isoformat(), "--json", stdout=out)
    [flag] = json.loads(out.getvalue())
    assert flag == {"reason": "stalled", "rupture": open_rupture.key, "session": None, "client": "C-0001",
                    "therapist": "dlee", "escalated": False}


def test_other_therapists_do_not_see_it(open_rupture, start, as_other_therapist):
    sweep(now=start + 25 * DAY)
    assert list(as_other_therapist.get("/").context["stalled"]) == []


def test_other_supervisors_do_not_see_it(open_rupture, start, client, other_supervisor):
    sweep(now=start + 25 * DAY)
    login(client, other_supervisor)
    assert list(client.get("/").context["stalled"]) == []
