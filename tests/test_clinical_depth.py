"""Clinical depth on the pages: risk, declined relational talk, stages, session number."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from reminders.models import RiskAlert
from reminders.sweep import sweep
from ruptures.models import RepairAttempt, RuptureEvent
from sessions.models import Client
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
