"""Exports never break on deleted records; imports cannot misplace a record."""

import io
import json
from datetime import UTC

import pytest
from django.core.management import call_command

from accounts.models import User
from audit.deletion import restore_deletion
from audit.models import Deletion
from exchange.importer import run_import
from exchange.validation import MAX_PROBLEMS, skeleton
from ruptures.models import RepairAttempt, RuptureEvent
from sessions.models import Client, TherapySession
from tests.factories import make_user
from tests.test_exchange import caseload, empty_the_database, export_text, import_doc


@pytest.fixture
def imported(db):
    assert import_doc(caseload()).applied


def problems_of(doc, **kwargs):
    result = import_doc(doc, **kwargs)
    assert not result.applied
    return [(p.path, p.message) for p in result.problems]


def deleted_session(by="dlee"):
    session = TherapySession.objects.get(key="S-1")
    return session.soft_delete(by=User.objects.get(username=by), reason="Entered on the wrong client.")


# --- Exports and deleted records ---------------------------------------------------------------


def test_a_full_export_carries_deleted_records_with_their_deletion(imported, client):
    deletion = deleted_session()
    doc = json.loads(export_text())
    session = next(s for s in doc["sessions"] if s["id"] == "S-1")
    rupture = next(r for r in doc["ruptures"] if r["id"] == "R-1")
    assert session["deleted"] == rupture["deleted"] == deletion.key
    # Both attempts of R-1 go with it (the second was tried in S-2, which stays).
    assert [a.get("deleted") for a in rupture["attempts"]] == [deletion.key, deletion.key]
    assert doc["deletions"] == [{
        "id": deletion.key, "at": deletion.at.astimezone(UTC).isoformat(), "by": "dlee",
        "reason": "Entered on the wrong client.", "record": {"type": "session", "id": "S-1"},
    }]
    assert doc["version"] == 2 and "pseudonymised" not in doc


def test_the_web_export_answers_after_a_session_is_deleted(imported, as_admin):
    deletion = deleted_session()
    for kind, carries_deleted in (("without_free_text", True), ("pseudonymised", False)):
        response = as_admin.post("/exchange/export", {"kind": kind})
        assert response.status_code == 200
        doc = json.loads(b"".join(response.streaming_content))
        assert (deletion.key in json.dumps(doc)) is carries_deleted


def test_a_backup_with_deleted_records_round_trips_byte_for_byte_and_stays_hidden(imported, admin_user):
    deleted_session()
    first = export_text()
    empty_the_database()
    assert import_doc(json.loads(first)).applied
    assert export_text() == first
    assert not TherapySession.objects.filter(key="S-1").exists()
    assert not RuptureEvent.objects.filter(key="R-1").exists()
    assert RepairAttempt.objects.filter(rupture__key="R-3").count() == 1
    # Restorable after the restore from backup, as one deletion.
    session = TherapySession.all_objects.get(key="S-1")
    restored = restore_deletion(deletion=session.deletion, by=make_user("admin", "root"), reason="Back.")
    assert restored == {"therapy_sessions.therapysession": 1, "ruptures.ruptureevent": 1,
                        "ruptures.repairattempt": 2}
    assert import_doc(json.loads(first)).problems  # the file now says deleted, the database not


def test_a_backup_carries_the_checks_of_a_deleted_session_hidden(imported, shipped_instruments):
    from checks.models import AllianceCheck

    assert import_doc({**caseload(), "version": 2, "checks": [
        therapist_check(), {**therapist_check("K-2", "S-2"), "respondent": "client", "answers": {}, "declined": True},
    ]}).applied
    deletion = deleted_session()
    first = export_text()
    doc = json.loads(first)
    assert [(c["id"], c.get("deleted")) for c in doc["checks"]] == [("K-1", deletion.key), ("K-2", None)]

    empty_the_database()
    assert import_doc(json.loads(first)).applied
    assert export_text() == first
    assert list(AllianceCheck.objects.values_list("key", flat=True)) == ["K-2"]
    session = TherapySession.all_objects.get(key="S-1")
    restored = restore_deletion(deletion=session.deletion, by=make_user("admin", "root"), reason="Back.")
    assert restored["checks.alliancecheck"] == 1 and AllianceCheck.objects.filter(key="K-1").exists()


def test_a_deletion_the_app_cannot_make_is_refused_not_a_crash(imported):
    doc = {**caseload(), "deletions": [{"id": "D-x", "at": "2026-11-20T10:00:00+00:00", "by": "dlee",
                                        "reason": "?", "record": {"type": "attempt", "id": "1"}}]}
    assert problems_of(doc) == [(
        "deletions[0].record",
        'expected {"type": client, session or rupture, "id": its key}, got {"type": "attempt", "id": "1"}',
    )]


def test_a_pseudonymised_export_leaves_deleted_records_out(imported):
    deleted_session()
    doc = json.loads(export_text(deidentify=True))
    assert doc["pseudonymised"] is True and "deletions" not in doc
    assert len(doc["sessions"]) == 3 and len(doc["ruptures"]) == 2
    assert not any("deleted" in r for section in ("clients", "sessions", "ruptures") for r in doc[section])


def test_the_same_clinic_without_the_deleted_records_exports_the_same_pseudonymised_file(imported):
    Client.objects.get(code="C-0002").soft_delete(by=User.objects.get(username="apatel"), reason="Test.")
    with_deleted = export_text(deidentify=True)
    doc = caseload()
    doc["clients"] = [c for c in doc["clients"] if c["code"] != "C-0002"]
    doc["sessions"] = [s for s in doc["sessions"] if s["client"] != "C-0002"]
    doc["ruptures"] = [r for r in doc["ruptures"] if r["session"] not in ("S-3", "S-4")]
    empty_the_database()
    import_doc(doc)
    assert export_text(deidentify=True) == with_deleted


# --- Imports cannot misplace a record --------------------------------------------------------------


def test_it_refuses_to_move_a_rupture_to_another_clients_session(imported):
    doc = caseload()
    doc["ruptures"][0]["session"] = "S-3"
    doc["ruptures"][0]["attempts"] = []
    assert problems_of(doc) == [(
        "ruptures[0].session",
        'rupture "R-1" is client "C-0001"\'s in the database; an import cannot move it to a session of '
        'client "C-0002"',
    )]
    assert RuptureEvent.objects.get(key="R-1").session.key == "S-1"


def therapist_check(key="K-1", session="S-1"):
    return {"id": key, "session": session, "respondent": "therapist", "instrument": "alliance_check",
            "version": 1, "answers": {"tension": "no"}, "submitted_at": "2026-11-20T11:00:00+00:00",
            "declined": False}


def test_it_refuses_to_move_an_alliance_check_to_another_clients_session(imported, shipped_instruments):
    from checks.models import AllianceCheck

    assert import_doc({**caseload(), "version": 2, "checks": [therapist_check()]}).applied
    moved = {**caseload(), "version": 2, "checks": [therapist_check(session="S-3")]}
    assert problems_of(moved) == [(
        "checks[0].session",
        'check "K-1" is client "C-0001"\'s in the database; an import cannot move it to a session of '
        'client "C-0002"',
    )]
    assert AllianceCheck.objects.get(key="K-1").session.key == "S-1"


def test_no_alliance_check_attaches_to_a_deleted_session(imported, shipped_instruments):
    deleted_session()
    doc = caseload()
    doc["sessions"] = [s for s in doc["sessions"] if s["id"] != "S-1"]
    doc["ruptures"] = [r for r in doc["ruptures"] if r["session"] != "S-1"]
    doc = {**doc, "version": 2, "checks": [therapist_check()]}
    assert problems_of(doc) == [
        ("checks[0]", 'its session "S-1" is deleted: nothing can be attached to a deleted record'),
    ]


def test_it_refuses_duplicate_keys_in_any_object_with_their_path(db):
    # The client would silently have gone to dlee, the last value.
    text = json.dumps(caseload()).replace('"therapist": "apatel", "status"',
                                          '"therapist": "apatel", "therapist": "dlee", "status"', 1)
    text = text.replace('"version": 1', '"version": 1, "version": 1', 1)
    result = run_import(text.encode())
    assert [(p.path, p.message) for p in result.problems] == [
        ("version", "this key appears more than once in the object; give it once"),
        ("clients[1].therapist", "this key appears more than once in the object; give it once"),
    ]
    assert not Client.all_objects.exists()


def test_past_the_listed_thousand_duplicate_keys_are_counted_truly(db):
    doc = caseload()
    text = json.dumps(doc)
    repeated = ", ".join(f'"x{n}": 1, "x{n}": 2' for n in range(2500))
    text = text.replace('"version": 1', f'"version": 1, {repeated}', 1)
    problems = run_import(text.encode()).problems
    assert len(problems) == MAX_PROBLEMS + 1
    assert (problems[-1].path, problems[-1].message) == ("$", "and 1500 more problems not listed")


@pytest.mark.parametrize("role", ["supervisor", "admin"])
def test_it_gives_clients_to_therapists_only(db, role):
    doc = caseload()
    doc["clients"][0]["therapist"] = "mokafor" if role == "supervisor" else "boss"
    name = doc["clients"][0]["therapist"]
    assert ("clients[0].therapist", f'"{name}" is a {role}, not a therapist') in problems_of(doc)


def test_a_supervisor_has_the_supervisor_role_and_supervises_a_therapist(db):
    doc = caseload()
    doc["users"][1]["supervisor"] = "apatel"
    doc["users"][0]["supervisor"] = "boss"
    assert problems_of(doc) == [
        ("users[0].supervisor", "only therapists have a supervisor, and this is a supervisor"),
        ("users[1].supervisor", '"apatel" is a therapist, not a supervisor'),
    ]


@pytest.mark.parametrize("username", ["ａｄｍｉｎ", "Admin", "mоkafor", "bоss"])
def test_new_usernames_are_plain_ascii(imported, username):
    doc = caseload()
    doc["users"].append({"username": username, "role": "admin"})
    [(path, message)] = problems_of(doc)
    assert path == "users[4].username" and "a-z, 0-9, dot, dash and underscore" in message


@pytest.mark.parametrize("username", ["m0kafor", "mokafor_", "rnokafor", "d1ee", "dlee."])
def test_new_usernames_that_look_like_an_existing_one_are_refused(imported, username):
    doc = caseload()
    doc["users"].append({"username": username, "role": "admin"})
    [(path, message)] = problems_of(doc)
    assert path == "users[4].username" and "looks like the username" in message


def test_look_alikes_of_existing_unicode_usernames_are_caught(db):
    make_user("admin", username="ＡＤＭＩＮ")
    assert skeleton("ＡＤＭＩＮ") == skeleton("admin") == skeleton("adrnin")
    doc = caseload()
    doc["users"].append({"username": "admin", "role": "admin"})
    assert problems_of(doc)[0][0] == "users[4].username"


def test_role_changes_need_allow_role_changes_and_are_listed_in_the_dry_run(imported, tmp_path):
    doc = caseload()
    doc["users"][3]["role"] = "supervisor"
    path = tmp_path / "roles.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(Exception, match="1 problem"):
        call_command("import_caseload", str(path), "--dry-run", stdout=io.StringIO(), stderr=io.StringIO())
    out = io.StringIO()
    call_command("import_caseload", str(path), "--dry-run", "--allow-role-changes", stdout=out)
    assert "role of boss: admin -> supervisor" in out.getvalue()
    assert User.objects.get(username="boss").role == "admin"
    call_command("import_caseload", str(path), "--allow-role-changes", stdout=io.StringIO())
    assert User.objects.get(username="boss").role == "supervisor"


def test_a_session_changes_therapist_only_with_its_client(imported):
    doc = caseload()
    doc["sessions"][2]["therapist"] = "dlee"
    assert problems_of(doc)[0][0] == "sessions[2].therapist"
    doc["clients"][1]["therapist"] = "dlee"
    doc["sessions"][3]["therapist"] = "dlee"
    assert import_doc(doc).applied
    assert set(TherapySession.objects.filter(client__code="C-0002").values_list("therapist__username", flat=True)) \
        == {"dlee"}


def test_nothing_new_attaches_to_a_deleted_record(imported):
    deleted_session()
    doc = caseload()
    doc["sessions"] = [s for s in doc["sessions"] if s["id"] != "S-1"]
    doc["ruptures"] = [{
        "id": "R-new", "session": "S-1", "kind": "withdrawal", "actor": "client", "markers": ["denial"],
        "intensity": 2, "source": "unknown", "repair_status": "unaddressed",
    }]
    assert problems_of(doc) == [
        ("ruptures[0]", 'its session "S-1" is deleted: nothing can be attached to a deleted record'),
    ]


def test_an_import_neither_restores_nor_deletes(imported):
    deleted_session()
    assert ("sessions[0]", 'this session is deleted in the database ("' + TherapySession.all_objects.get(
        key="S-1").deletion.key + '"); restore it with restore_record before importing changes to it') in (
        problems_of(caseload())
    )


def test_the_problem_list_stops_at_a_thousand_with_a_count_of_the_rest(db):
    doc = caseload()
    doc["sessions"] = [
        {"id": f"S-{n}", "client": "nobody", "therapist": "dlee", "starts_at": "2026-11-20T10:00:00+00:00",
         "status": "held"}
        for n in range(3000)
    ]
    doc["ruptures"] = []
    problems = import_doc(doc).problems
    assert len(problems) == MAX_PROBLEMS + 1
    assert (problems[-1].path, problems[-1].message) == ("$", "and 2000 more problems not listed")


def test_an_export_without_free_text_leaves_out_deletion_reasons_and_still_imports(imported):
    from exchange.exporter import export_caseload
    from exchange.validation import REASON_NOT_IN_FILE

    deletion = deleted_session()
    parts = []
    export_caseload(parts.append, free_text=False)
    doc = json.loads("".join(parts))
    assert doc["deletions"] == [{"id": deletion.key, "at": deletion.at.astimezone(UTC).isoformat(), "by": "dlee",
                                 "record": {"type": "session", "id": "S-1"}}]
    empty_the_database()
    assert import_doc(doc).applied
    assert Deletion.objects.get().reason == REASON_NOT_IN_FILE
    assert not TherapySession.objects.filter(key="S-1").exists()
