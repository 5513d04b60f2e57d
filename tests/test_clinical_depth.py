"""Clinical depth on the pages: risk, declined relational talk, stages, session number."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from reminders.models import RiskAlert
from reminders.sweep import sweep
from ruptures.models import RepairAttempt, RuptureEvent
from sessions.models import Client
from tests.conftest import login
from tests.factories import make_attempt, make_client, make_rupture, make_session, make_user, supervise

HOPELESS = {
    "kind": "withdrawal",
    "actor": "client",
    "markers": ["self_criticism_hopelessness", "minimal_response"],
    "intensity": "5",
    "source": "unknown",
}


def new_url(session):
    return f"/sessions/{session.pk}/ruptures/new"


# --- The form asks about risk ---------------------------------------------------------


def test_it_asks_about_risk_when_hopelessness_is_marked_at_intensity_4_or_5(as_therapist, held_session):
    response = as_therapist.post(new_url(held_session), HOPELESS)
    assert response.status_code == 400
    assert not RuptureEvent.objects.exists()
    assert "say whether there is a risk concern" in response.context["form"].errors["risk"][0]
    assert "is there a risk concern?" in response.content.decode()


def test_it_saves_no_risk_when_the_therapist_says_so(as_therapist, held_session):
    response = as_therapist.post(new_url(held_session), {**HOPELESS, "risk": "none"})
    assert response.status_code == 302
    assert RuptureEvent.objects.get().risk == "none"


@pytest.mark.parametrize("intensity", ["1", "3"])
def test_it_defaults_the_risk_to_none_without_asking_below_intensity_4(as_therapist, held_session, intensity):
    response = as_therapist.post(new_url(held_session), {**HOPELESS, "intensity": intensity})
    assert response.status_code == 302
    assert RuptureEvent.objects.get().risk == "none"


def test_it_refuses_an_unknown_risk_next_to_the_field(as_therapist, held_session):
    response = as_therapist.post(new_url(held_session), {**HOPELESS, "risk": "doom"})
    assert response.status_code == 400
    assert response.context["form"].errors["risk"]
    assert not RuptureEvent.objects.exists()


def test_the_live_form_asks_about_risk_as_the_markers_change(as_therapist, held_session):
    response = as_therapist.get(
        new_url(held_session), {"markers": ["self_criticism_hopelessness"], "intensity": "4"},
        headers={"HX-Request": "true", "HX-Target": "risk"},
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="risk"') and "is there a risk concern?" in html
    quiet = as_therapist.get(
        new_url(held_session), {"markers": ["minimal_response"], "intensity": "4"},
        headers={"HX-Request": "true", "HX-Target": "risk"},
    )
    assert "is there a risk concern?" not in quiet.content.decode()


def test_it_records_that_the_client_declined_relational_talk(as_therapist, held_session):
    as_therapist.post(new_url(held_session), {**HOPELESS, "intensity": "2", "declined_relational_talk": "on"})
    assert RuptureEvent.objects.get().declined_relational_talk is True


def test_it_logs_an_identity_or_culture_source(as_therapist, held_session):
    data = {**HOPELESS, "kind": "confrontation", "markers": ["complaint_about_therapist"],
            "source": "identity_or_culture", "intensity": "4"}
    response = as_therapist.post(new_url(held_session), data)
    rupture = RuptureEvent.objects.get()
    assert rupture.source == "identity_or_culture"
    page = as_therapist.get(response["Location"])
    assert page.context["suggestions"][0].strategy in {"acknowledge_contribution", "invite_discussion"}


# --- Safety first on the page, and the supervisor told at once ----------------------------


def test_the_rupture_page_puts_the_clinics_protocol_first(as_therapist, held_session, settings):
    settings.RISK_PROTOCOL_NAME = "Suicide Risk Protocol v3"
    settings.RISK_PROTOCOL_URL = "https://intranet.example/risk"
    rupture = make_rupture(held_session, markers=["self_criticism_hopelessness"], intensity=5, risk="self_harm")
    html = as_therapist.get(f"/ruptures/{rupture.pk}/").content.decode()
    safety = html.index('data-testid="safety-first"')
    assert safety < html.index("Suggested responses") < html.index('class="suggestion')
    assert '<a href="https://intranet.example/risk">Suicide Risk Protocol v3</a>' in html
    assert "After safety:" in html


def test_no_safety_item_without_a_risk(as_therapist, rupture):
    html = as_therapist.get(f"/ruptures/{rupture.pk}/").content.decode()
    assert 'data-testid="safety-first"' not in html and "After safety" not in html


def test_saving_a_risk_tells_the_supervisor_at_once_with_a_link_only(
    as_therapist, held_session, supervisor, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        as_therapist.post(new_url(held_session), {**HOPELESS, "risk": "self_harm"})
    [email] = [m for m in mailoutbox if m.to == [supervisor.email]]
    assert "risk concern" in email.subject
    assert "/" in email.body and held_session.client.code not in email.body + email.subject
    assert RiskAlert.objects.get().notified_at is not None
    # Told once: later sweeps send nothing more about it.
    sweep()
    assert len([m for m in mailoutbox if m.to == [supervisor.email]]) == 1


def test_a_new_risk_on_an_edit_is_told_too(now_rupture_with_risk, supervisor, mailoutbox):
    rupture = now_rupture_with_risk
    sweep()
    RuptureEvent.objects.filter(pk=rupture.pk).update(risk="safeguarding")
    sweep()
    assert sorted(RiskAlert.objects.values_list("risk", flat=True)) == ["safeguarding", "self_harm"]
    assert len([m for m in mailoutbox if m.to == [supervisor.email]]) == 2


def test_an_old_risk_from_an_import_is_history_not_news(client_record, supervisor, mailoutbox, settings):
    old = make_session(client_record, days_ago=settings.RISK_ALERT_DAYS + 1)
    make_rupture(old, risk="harm_to_others")
    sweep()
    assert not RiskAlert.objects.exists() and not mailoutbox


def test_a_risk_waits_for_a_supervisor_to_tell(client_record, mailoutbox, therapist):
    make_rupture(make_session(client_record), risk="acute_crisis")
    sweep()
    assert RiskAlert.objects.get().notified_at is None and not mailoutbox
    supervisor = make_user("supervisor")
    supervise(supervisor, therapist)
    sweep()
    assert [m.to for m in mailoutbox] == [[supervisor.email]]


def test_the_supervisor_home_shows_risk_concerns_first(as_supervisor, now_rupture_with_risk):
    response = as_supervisor.get("/")
    html = response.content.decode()
    assert list(response.context["risks"]) == [now_rupture_with_risk]
    assert html.index('data-testid="risk-concerns"') < html.index("Active clients")
    assert "Self-harm" in html


def test_the_supervisor_home_leaves_out_other_therapists_risks(as_supervisor, other_therapist):
    make_rupture(make_session(make_client(other_therapist)), risk="self_harm")
    assert list(as_supervisor.get("/").context["risks"]) == []


@pytest.fixture
def now_rupture_with_risk(client_record):
    return make_rupture(make_session(client_record), markers=["self_criticism_hopelessness"], intensity=5,
                        risk="self_harm")


# --- A risk is news when the app records it, however old the session ----------------------------


def told(supervisor, mailoutbox):
    return [m for m in mailoutbox if m.to == [supervisor.email] and "risk concern" in m.subject]


@pytest.fixture
def old_session(client_record, settings):
    """A session older than the alert window: the therapist logs it late."""
    return make_session(client_record, days_ago=settings.RISK_ALERT_DAYS + 1)


def test_a_risk_logged_late_tells_the_supervisor_at_once(
    as_therapist, old_session, supervisor, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_therapist.post(new_url(old_session), {**HOPELESS, "risk": "self_harm"})
    assert response.status_code == 302
    rupture = RuptureEvent.objects.get()
    assert rupture.risk_recorded_at is not None
    assert RiskAlert.objects.get().notified_at is not None
    assert len(told(supervisor, mailoutbox)) == 1
    login(as_therapist, supervisor)
    assert list(as_therapist.get("/").context["risks"]) == [rupture]


def test_an_edit_to_a_risk_on_an_old_session_tells_the_supervisor_too(
    as_therapist, old_session, supervisor, mailoutbox, django_capture_on_commit_callbacks
):
    rupture = make_rupture(old_session, markers=["self_criticism_hopelessness"], intensity=5, risk="none")
    with django_capture_on_commit_callbacks(execute=True):
        response = as_therapist.post(
            f"/ruptures/{rupture.pk}/edit", {**HOPELESS, "risk": "acute_crisis", "version": rupture.version}
        )
    assert response.status_code == 302
    assert list(RiskAlert.objects.values_list("rupture", "risk")) == [(rupture.pk, "acute_crisis")]
    assert len(told(supervisor, mailoutbox)) == 1


def test_an_edit_keeps_the_risks_time_unless_it_changes_the_risk(as_therapist, old_session):
    as_therapist.post(new_url(old_session), {**HOPELESS, "risk": "self_harm"})
    rupture = RuptureEvent.objects.get()
    first = rupture.risk_recorded_at
    edit = {**HOPELESS, "risk": "self_harm", "plan": "Ask about the weekend.", "version": rupture.version}
    assert as_therapist.post(f"/ruptures/{rupture.pk}/edit", edit).status_code == 302
    rupture.refresh_from_db()
    assert rupture.plan == "Ask about the weekend." and rupture.risk_recorded_at == first
    edit = {**HOPELESS, "risk": "safeguarding", "version": rupture.version}
    assert as_therapist.post(f"/ruptures/{rupture.pk}/edit", edit).status_code == 302
    rupture.refresh_from_db()
    assert rupture.risk_recorded_at > first
    edit = {**HOPELESS, "risk": "none", "version": rupture.version}
    assert as_therapist.post(f"/ruptures/{rupture.pk}/edit", edit).status_code == 302
    rupture.refresh_from_db()
    assert rupture.risk_recorded_at is None


def test_an_old_risk_from_an_import_stays_history_when_edited_without_changing_it(
    as_therapist, old_session, supervisor, mailoutbox, django_capture_on_commit_callbacks
):
    rupture = make_rupture(old_session, markers=["self_criticism_hopelessness"], intensity=5, risk="harm_to_others")
    with django_capture_on_commit_callbacks(execute=True):
        as_therapist.post(f"/ruptures/{rupture.pk}/edit",
                          {**HOPELESS, "risk": "harm_to_others", "plan": "Review.", "version": rupture.version})
    rupture.refresh_from_db()
    assert rupture.plan == "Review." and rupture.risk_recorded_at is None
    assert not RiskAlert.objects.exists() and not told(supervisor, mailoutbox)


def test_the_supervisors_list_is_what_was_alerted(client_record, supervisor, settings):
    from accounts.views import recent_risks

    days = timedelta(days=settings.RISK_ALERT_DAYS)
    now = timezone.now()
    old = make_session(client_record, starts_at=now - days - timedelta(days=5))
    recent = make_session(client_record, starts_at=now - timedelta(days=2))
    late = make_rupture(old, risk="self_harm", risk_recorded_at=now - timedelta(hours=1))
    from_import = make_rupture(recent, risk="safeguarding")
    make_rupture(old, risk="self_harm")  # imported history
    make_rupture(old, risk="acute_crisis", risk_recorded_at=now - days - timedelta(hours=1))  # told long ago
    make_rupture(recent)  # no risk
    sweep(now=now)
    alerted = {a.rupture for a in RiskAlert.objects.select_related("rupture")}
    listed = list(recent_risks(supervisor, now=now))
    assert listed == [late, from_import]  # newest news first
    assert set(listed) == alerted
    # Both leave the list once they stop being news, and nothing more is raised.
    later = now + days + timedelta(days=1)
    assert list(recent_risks(supervisor, now=later)) == []
    assert sweep(now=later).risk_alerts == 0


def test_a_rupture_cannot_have_a_risks_time_without_a_risk(rupture):
    with pytest.raises(IntegrityError), transaction.atomic():
        RuptureEvent.objects.filter(pk=rupture.pk).update(risk_recorded_at=timezone.now())


# --- Stages, session number ------------------------------------------------------------------


def test_it_records_the_stage_an_attempt_reached_and_starts_the_next_step_from_it(as_therapist, rupture):
    response = as_therapist.post(
        f"/ruptures/{rupture.pk}/attempts/new",
        {"session": rupture.session_id, "strategy": "invite_discussion", "outcome": "attempted",
         "stage_reached": "explored_avoidance", "note": ""},
    )
    assert response.status_code == 302
    assert RepairAttempt.objects.get().stage_reached == "explored_avoidance"
    page = as_therapist.get(f"/ruptures/{rupture.pk}/")
    assert "help them assert the need or disagreement" in page.content.decode()
    assert "invite_discussion" in {h.strategy for h in page.context["advice"].held_back}
    assert "Explored what held the client back" in page.content.decode()


def test_an_attempt_may_leave_the_stage_out(as_therapist, rupture):
    as_therapist.post(
        f"/ruptures/{rupture.pk}/attempts/new",
        {"session": rupture.session_id, "strategy": "invite_discussion", "outcome": "attempted"},
    )
    assert RepairAttempt.objects.get().stage_reached == ""


def test_it_derives_which_session_of_the_therapy_it_was_from_held_sessions(as_therapist, client_record):
    make_session(client_record, days_ago=30)
    make_session(client_record, days_ago=23, status="cancelled")
    make_session(client_record, days_ago=16, status="no_show")
    make_session(client_record, days_ago=9)
    rupture = make_rupture(make_session(client_record, days_ago=2))
    make_session(client_record, days_ago=1)
    page = as_therapist.get(f"/ruptures/{rupture.pk}/")
    assert page.context["advice"].session_number == 3


def test_a_first_session_rupture_holds_metacommunication_back_and_says_why(as_therapist, rupture):
    advice = as_therapist.get(f"/ruptures/{rupture.pk}/").context["advice"]
    assert advice.session_number == 1
    assert {"invite_discussion", "disclose_internal_experience"} <= {h.strategy for h in advice.held_back}
    assert "session 1 of the therapy" in advice.held_back[0].reason


def test_what_failed_before_with_this_client_moves_towards_expressive_work(as_therapist, client_record):
    for days in (30, 23, 16):
        make_session(client_record, days_ago=days)
    earlier = make_rupture(make_session(client_record, days_ago=9), source="task_disagreement")
    make_attempt(earlier, strategy="change_tasks_goals", outcome="unresolved")
    make_attempt(earlier, strategy="change_tasks_goals", outcome="unresolved")
    rupture = make_rupture(make_session(client_record, days_ago=2), source="task_disagreement")
    page = as_therapist.get(f"/ruptures/{rupture.pk}/")
    suggestions = page.context["suggestions"]
    assert suggestions[0].family == "expressive"
    assert "revising the task did not help" in suggestions[0].rationale
    assert suggestions[-1].strategy == "change_tasks_goals"
    assert "did not help the last two times" in suggestions[-1].rationale


def test_the_page_groups_suggestions_by_when_and_labels_the_track_record(as_therapist, client_record):
    for days in (30, 23):
        make_session(client_record, days_ago=days)
    rupture = make_rupture(make_session(client_record, days_ago=2), source="misunderstanding")
    page = as_therapist.get(f"/ruptures/{rupture.pk}/")
    html = page.content.decode()
    whens = [when for when, _, _ in page.context["advice"].groups]
    assert whens == [w for w in ("in_the_moment", "next_session", "over_time") if w in whens]
    assert "At the next session" in html
    assert "not a comparison of strategies" in html


# --- The database keeps the vocabulary ------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [(RuptureEvent, "risk", "doom"), (RepairAttempt, "stage_reached", "done"), (Client, "ending", "vanished")],
)
def test_the_database_refuses_a_value_outside_the_vocabulary(rupture, model, field, value):
    row = {RuptureEvent: rupture, RepairAttempt: make_attempt(rupture), Client: rupture.session.client}[model]
    with pytest.raises(IntegrityError), transaction.atomic():
        model.objects.filter(pk=row.pk).update(**{field: value})


def test_the_supervisor_home_shows_the_risks_of_recent_sessions_only(as_supervisor, client_record, settings):
    edge = timezone.now() - timedelta(days=settings.RISK_ALERT_DAYS)
    inside = make_rupture(make_session(client_record, starts_at=edge + timedelta(hours=1)), risk="self_harm")
    make_rupture(make_session(client_record, starts_at=edge - timedelta(hours=1)), risk="self_harm")
    assert list(as_supervisor.get("/").context["risks"]) == [inside]


# --- Configuration ------------------------------------------------------------------------------


def test_it_warns_when_the_risk_protocol_has_no_link_and_refuses_a_bad_one(settings):
    from reminders.checks import check_reminder_settings

    settings.DEBUG = False
    settings.SITE_URL = "https://rupture-log.example.org"
    settings.RISK_PROTOCOL_URL = ""
    assert [p.id for p in check_reminder_settings(None)] == ["reminders.W002"]
    settings.RISK_PROTOCOL_URL = "javascript:alert(1)"
    assert [p.id for p in check_reminder_settings(None)] == ["reminders.E003"]
    settings.RISK_PROTOCOL_URL = "https://intranet.example/risk"
    assert check_reminder_settings(None) == []
