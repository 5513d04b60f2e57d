"""Caseload format version 2: clinical depth's optional additions; version 1 still imports."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from reminders.models import RiskAlert
from reminders.sweep import sweep
from ruptures.models import RepairAttempt, RuptureEvent
from ruptures.services import update_rupture
from sessions.models import Client
from tests.test_exchange import caseload, export_text, import_doc


def v2():
    doc = caseload()
    doc["version"] = 2
    doc["clients"][1].update(status="discharged", ending="dropout")
    rupture = doc["ruptures"][0]
    rupture.update(risk="self_harm", declined_relational_talk=True)
    rupture["attempts"][0]["stage_reached"] = "explored_experience"
    return doc


def test_it_imports_the_version_2_fields(db):
    assert import_doc(v2()).applied
    rupture = RuptureEvent.objects.get(key="R-1")
    assert (rupture.risk, rupture.declined_relational_talk) == ("self_harm", True)
    assert RepairAttempt.objects.filter(rupture=rupture).order_by("pk")[0].stage_reached == "explored_experience"
    assert Client.objects.get(code="C-0002").ending == "dropout"


def test_it_exports_version_2_and_reads_its_own_export_back(db):
    import_doc(v2())
    exported = json.loads(export_text())
    assert exported["version"] == 2
    rupture = next(r for r in exported["ruptures"] if r["id"] == "R-1")
    assert rupture["risk"] == "self_harm" and rupture["declined_relational_talk"] is True
    assert rupture["attempts"][0]["stage_reached"] == "explored_experience"
    assert rupture["attempts"][1]["stage_reached"] == ""
    client = next(c for c in exported["clients"] if c["code"] == "C-0002")
    assert client["ending"] == "dropout"
    assert next(c for c in exported["clients"] if c["code"] == "C-0001")["ending"] == ""
    again = import_doc(exported)
    assert again.applied and again.changes == 0


def test_a_version_1_file_imports_with_the_defaults(db):
    assert import_doc(caseload()).applied
    assert set(RuptureEvent.objects.values_list("risk", "declined_relational_talk")) == {("none", False)}
    assert set(RepairAttempt.objects.values_list("stage_reached", flat=True)) == {""}


def test_a_version_1_file_keeps_what_the_database_has(db):
    import_doc(v2())
    import_doc(caseload())
    rupture = RuptureEvent.objects.get(key="R-1")
    assert rupture.risk == "self_harm" and rupture.declined_relational_talk is True


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (lambda d: d["ruptures"][0].update(risk="doom"), "ruptures[0].risk", 'unknown risk "doom"'),
        (lambda d: d["ruptures"][0].update(declined_relational_talk="yes"),
         "ruptures[0].declined_relational_talk", 'expected true or false, got "yes"'),
        (lambda d: d["ruptures"][0]["attempts"][0].update(stage_reached="done"),
         "ruptures[0].attempts[0].stage_reached", 'unknown stage "done"'),
        (lambda d: d["clients"][1].update(ending="vanished"), "clients[1].ending", 'unknown ending "vanished"'),
        (lambda d: d["clients"][0].update(ending="planned"), "clients[0].ending",
         'only a discharged client has an ending; this one is "active"'),
    ],
)
def test_it_refuses_a_bad_version_2_field_with_its_path(db, change, path, message):
    doc = v2()
    change(doc)
    result = import_doc(doc)
    assert not result.applied
    assert any(p.path == path and message in p.message for p in result.problems), result.problems
    assert not RuptureEvent.objects.exists()


def test_it_refuses_a_version_2_field_in_a_version_1_file(db):
    doc = v2()
    doc["version"] = 1
    result = import_doc(doc)
    assert not result.applied
    assert {p.path for p in result.problems} >= {"ruptures[0].risk", "clients[1].ending"}
    assert all("a version 2 field, in a version 1 file" in p.message for p in result.problems)


def test_an_imported_active_status_clears_the_ending(db):
    import_doc(v2())
    doc = v2()
    doc["clients"][1].update(status="active")
    del doc["clients"][1]["ending"]
    assert import_doc(doc).applied
    assert Client.objects.get(code="C-0002").ending == ""


def test_an_old_imported_risk_does_not_alert_anyone(db):
    doc = v2()
    doc["sessions"][0]["starts_at"] = "2020-01-20T10:00:00+00:00"
    import_doc(doc)
    sweep()
    assert not RiskAlert.objects.exists()


def test_an_import_leaves_a_risk_recorded_in_the_app_alone_and_brings_its_own_as_history(db):
    doc = v2()
    doc["sessions"][0]["starts_at"] = "2020-01-20T10:00:00+00:00"
    doc["ruptures"][0]["risk"] = "none"
    import_doc(doc)
    rupture = RuptureEvent.objects.get(key="R-1")
    # Logged late in the app: news, whatever the session's date.
    update_rupture(rupture=rupture, data={"risk": "self_harm"}, expected_version=rupture.version,
                   by=rupture.created_by)
    recorded = rupture.risk_recorded_at
    sweep()
    assert list(RiskAlert.objects.values_list("risk", flat=True)) == ["self_harm"]
    # A file that keeps the risk keeps when the app recorded it.
    doc["ruptures"][0].update(risk="self_harm", plan="Another plan.")
    assert import_doc(doc).applied
    rupture.refresh_from_db()
    assert rupture.risk_recorded_at == recorded
    # A file that changes it brings history: nobody is told.
    doc["ruptures"][0]["risk"] = "acute_crisis"
    assert import_doc(doc).applied
    rupture.refresh_from_db()
    assert (rupture.risk, rupture.risk_recorded_at) == ("acute_crisis", None)
    sweep()
    assert list(RiskAlert.objects.values_list("risk", flat=True)) == ["self_harm"]
    doc["ruptures"][0]["risk"] = "none"
    assert import_doc(doc).applied
    assert RuptureEvent.objects.get(key="R-1").risk == "none"


def test_a_recent_imported_risk_tells_the_supervisor(db, mailoutbox):
    doc = v2()
    doc["sessions"][0]["starts_at"] = timezone.now().isoformat()
    doc["sessions"][1]["starts_at"] = (timezone.now() + timedelta(days=1)).isoformat()
    import_doc(doc)
    sweep()
    assert RiskAlert.objects.get().notified_at is not None
    assert [m.to for m in mailoutbox if "risk" in m.subject] == [["m@example.org"]]
