import copy
import io
import json
from datetime import datetime, timedelta

import pgtrigger
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import Role, SupervisionLink, User
from audit.models import AccessEvent, Deletion
from checks.models import AllianceCheck, ClientCheckLink
from exchange import importer
from exchange.exporter import export_caseload, pseudonym
from exchange.importer import run_import
from exchange.validation import Existing, Problem, check, parse
from reminders.models import Flag
from ruptures.models import RepairAttempt, RuptureEvent
from sessions.models import Client, TherapySession
from tests.factories import make_attempt, make_check, make_client, make_rupture, make_session, make_user

NOTE = "Went quiet after the referral letter came up."
PLAN = "Ask how the letter question landed."


def caseload():
    """The format document's example, grown to cover every kind of record and field."""
    return {
        "format": "caseload",
        "version": 1,
        "users": [
            {
                "username": "mokafor",
                "name": "M. Okafor",
                "email": "m@example.org",
                "role": "supervisor",
            },
            {
                "username": "dlee",
                "name": "Dana Lee",
                "email": "d@example.org",
                "role": "therapist",
                "supervisor": "mokafor",
            },
            {
                "username": "apatel",
                "name": "Asha Patel",
                "email": "a@example.org",
                "role": "therapist",
                "supervisor": "mokafor",
            },
            {
                "username": "boss",
                "name": "Clinic Boss",
                "email": "boss@example.org",
                "role": "admin",
            },
        ],
        "clients": [
            {"code": "C-0001", "therapist": "dlee", "status": "active", "started_on": "2026-01-12"},
            {
                "code": "C-0002",
                "name": "Jo Bloggs",
                "therapist": "apatel",
                "status": "paused",
                "started_on": "2025-11-03",
            },
        ],
        "sessions": [
            {
                "id": "S-1",
                "client": "C-0001",
                "therapist": "dlee",
                "starts_at": "2026-11-20T10:00:00+00:00",
                "status": "held",
            },
            {
                "id": "S-2",
                "client": "C-0001",
                "therapist": "dlee",
                "starts_at": "2026-11-27T11:00:00+01:00",
                "status": "scheduled",
            },
            {
                "id": "S-3",
                "client": "C-0002",
                "therapist": "apatel",
                "starts_at": "2026-11-21T09:30:00-05:00",
                "status": "held",
            },
            {
                "id": "S-4",
                "client": "C-0002",
                "therapist": "apatel",
                "starts_at": "2026-11-28T14:30:00+00:00",
                "status": "no_show",
            },
        ],
        "ruptures": [
            {
                "id": "R-1",
                "session": "S-1",
                "kind": "withdrawal",
                "actor": "client",
                "markers": ["minimal_response"],
                "intensity": 3,
                "source": "frame_concern",
                "internal_signals": ["shut_out"],
                "minute": 25,
                "note": NOTE,
                "plan": PLAN,
                "repair_status": "attempted",
                "attempts": [
                    {
                        "session": "S-1",
                        "strategy": "clarify_misunderstanding",
                        "outcome": "partially_resolved",
                        "note": "",
                    },
                    {
                        "session": "S-2",
                        "strategy": "invite_discussion",
                        "outcome": "attempted",
                        "note": "Asked how it landed.",
                    },
                ],
            },
            # Mixed (markers of both kinds), no minute, no attempts.
            {
                "id": "R-2",
                "session": "S-3",
                "kind": "confrontation",
                "actor": "client",
                "markers": ["complaint_about_progress", "topic_shift"],
                "intensity": 5,
                "source": "goal_disagreement",
                "internal_signals": ["irritated", "defensive"],
                "minute": None,
                "note": "",
                "plan": "Revisit the goals together.",
                "repair_status": "unaddressed",
                "attempts": [],
            },
            # Therapist-side: no markers needed.
            {
                "id": "R-3",
                "session": "S-3",
                "kind": "withdrawal",
                "actor": "therapist",
                "markers": [],
                "intensity": 1,
                "source": "therapist_intervention",
                "internal_signals": [],
                "minute": 40,
                "note": "I disengaged.",
                "plan": "",
                "repair_status": "resolved",
                "attempts": [
                    {
                        "session": "S-3",
                        "strategy": "acknowledge_contribution",
                        "outcome": "resolved",
                        "note": "",
                    }
                ],
            },
        ],
    }


def as_bytes(doc):
    return json.dumps(doc).encode()


def import_doc(doc, **kwargs):
    return run_import(as_bytes(doc), **kwargs)


def export_text(deidentify=False, free_text=True):
    parts = []
    export_caseload(parts.append, deidentify=deidentify, free_text=free_text)
    return "".join(parts)


def database_state():
    """Every row the importer may touch, in full: 'exactly as before' means equal to this."""
    return [
        list(model.objects.order_by("pk").values())
        for model in (User, SupervisionLink, Client, TherapySession, RuptureEvent, RepairAttempt)
    ] + [list(User.groups.through.objects.order_by("pk").values())]


def empty_the_database():
    """Stands in for a second, empty database: the rows a caseload file can hold, gone.

    Clinical tables refuse DELETE (a trigger); only this stand-in may switch it off.
    """
    with pgtrigger.ignore(*(f"{label}:no_hard_delete" for label in (
        "ruptures.RepairAttempt", "ruptures.RuptureEvent", "therapy_sessions.TherapySession",
        "therapy_sessions.Client", "checks.AllianceCheck", "checks.ClientCheckLink", "audit.Deletion",
    ))):
        ClientCheckLink.all_objects.all().delete()
        Flag.all_objects.all().delete()
        AllianceCheck.all_objects.all().delete()
        RepairAttempt.all_objects.all().delete()
        RuptureEvent.all_objects.all().delete()
        TherapySession.all_objects.all().delete()
        # Deletions and the rows they hide point at each other; the foreign keys are
        # checked at commit, which a test never reaches.
        Deletion.objects.all()._raw_delete(Deletion.objects.db)
        Client.all_objects.all().delete()
    SupervisionLink.objects.all().delete()
    User.objects.all().delete()


def instant(text):
    return datetime.fromisoformat(text)


def assert_every_fact_present(original, exported):
    """Each field of each record of `original` is in `exported`, under the same key."""
    for section, key in [
        ("users", "username"),
        ("clients", "code"),
        ("sessions", "id"),
        ("ruptures", "id"),
    ]:
        by_key = {record[key]: record for record in exported[section]}
        for record in original[section]:
            other = by_key[record[key]]
            for name, value in record.items():
                if name == "starts_at":
                    assert instant(other[name]) == instant(value), (section, record[key], name)
                elif name == "attempts":
                    # Version 2 adds a field to each attempt; the file's own are all kept.
                    kept = [{k: a[k] for k in b} for a, b in zip(other[name], value, strict=True)]
                    assert kept == value, (section, record[key], name)
                else:
                    assert other[name] == value, (section, record[key], name)


# --- Import into an empty database ------------------------------------------------------------


def test_it_imports_every_record_of_a_file(db):
    result = import_doc(caseload())
    assert result.ok and result.applied
    assert {name: t.created for name, t in result.counts.items()} == {
        "users": 4,
        "supervision": 2,
        "clients": 2,
        "sessions": 4,
        "ruptures": 3,
        "attempts": 3,
        "checks": 0,
        "deletions": 0,
    }
    rupture = RuptureEvent.objects.get(key="R-1")
    assert rupture.session.key == "S-1" and rupture.session.client.code == "C-0001"
    assert (rupture.noticed, rupture.plan, rupture.minute) == (NOTE, PLAN, 25)
    assert rupture.markers == ["minimal_response"] and rupture.internal_signals == ["shut_out"]
    assert rupture.created_by.username == "dlee" and rupture.updated_by.username == "dlee"
    assert [(a.session.key, a.strategy) for a in rupture.attempts.order_by("pk")] == [
        ("S-1", "clarify_misunderstanding"),
        ("S-2", "invite_discussion"),
    ]
    session = TherapySession.objects.get(key="S-2")
    assert session.starts_at == instant("2026-11-27T10:00:00+00:00")
    assert session.duration_minutes == 50
    assert Client.objects.get(code="C-0002").name == "Jo Bloggs"
    assert (
        SupervisionLink.objects.get(therapist__username="dlee", ends_on=None).supervisor.username
        == "mokafor"
    )


def test_it_gives_imported_people_their_role_and_no_usable_password(db):
    import_doc(caseload())
    dlee, boss = User.objects.get(username="dlee"), User.objects.get(username="boss")
    assert not dlee.has_usable_password() and not boss.has_usable_password()
    assert dlee.display_name == "Dana Lee" and dlee.email == "d@example.org"
    assert list(dlee.groups.values_list("name", flat=True)) == ["therapist"]
    assert boss.role == Role.ADMIN and boss.is_staff
    assert list(boss.groups.values_list("name", flat=True)) == ["admin"]


def test_it_links_records_to_people_and_clients_already_in_the_database(therapist, client_record):
    doc = {
        "format": "caseload",
        "version": 1,
        "sessions": [
            {
                "id": "S-9",
                "client": client_record.code,
                "therapist": therapist.username,
                "starts_at": "2026-11-20T10:00:00+00:00",
                "status": "held",
            },
        ],
    }
    assert import_doc(doc).applied
    assert TherapySession.objects.get(key="S-9").client == client_record


FORMAT_EXAMPLE = """{
  "format": "caseload",
  "version": 1,
  "users": [
    {"username": "mokafor", "name": "M. Okafor", "email": "m@example.org", "role": "supervisor"},
    {"username": "dlee", "name": "Dana Lee", "email": "d@example.org", "role": "therapist",
     "supervisor": "mokafor"}
  ],
  "clients": [
    {"code": "C-0001", "therapist": "dlee", "status": "active", "started_on": "2026-01-12"}
  ],
  "sessions": [
    {"id": "S-1", "client": "C-0001", "therapist": "dlee",
     "starts_at": "2026-11-20T10:00:00+00:00", "status": "held"},
    {"id": "S-2", "client": "C-0001", "therapist": "dlee",
     "starts_at": "2026-11-27T10:00:00+00:00", "status": "scheduled"}
  ],
  "ruptures": [
    {"id": "R-1", "session": "S-1", "kind": "withdrawal", "actor": "client",
     "markers": ["minimal_response"], "intensity": 3, "source": "frame_concern",
     "internal_signals": ["shut_out"], "minute": 25,
     "note": "Went quiet after the referral letter came up.",
     "plan": "Ask how the letter question landed.",
     "repair_status": "attempted",
     "attempts": [
       {"session": "S-1", "strategy": "clarify_misunderstanding", "outcome": "partially_resolved",
        "note": ""}
     ]}
  ]
}"""


def test_it_reads_the_example_of_the_format_document(db):
    assert run_import(FORMAT_EXAMPLE.encode()).applied
    assert RepairAttempt.objects.get().outcome == "partially_resolved"


# --- Round trip -----------------------------------------------------------------------------


def test_it_round_trips_byte_for_byte_with_every_fact_of_the_file(db):
    original = caseload()
    import_doc(original)
    first = export_text()
    assert export_text() == first  # the same data, the same bytes

    empty_the_database()
    assert import_doc(json.loads(first)).applied
    second = export_text()

    assert second == first
    assert_every_fact_present(original, json.loads(second))


def test_it_round_trips_records_made_in_the_app(held_session, supervisor):
    rupture = make_rupture(
        held_session,
        hypothesis="Fears the letter will be shared.",
        plan=PLAN,
        internal_signals=["other"],
        internal_signals_other="odd",
    )
    later = make_session(held_session.client, days_ago=0)
    make_attempt(rupture, later, note="Talked it through.")
    make_rupture(
        make_session(make_client(held_session.therapist), days_ago=3),
        actor="therapist",
        markers=[],
        minute=12,
    )
    first = export_text()

    empty_the_database()
    assert import_doc(json.loads(first)).applied

    assert export_text() == first
    # Keys the app made are kept, not remade.
    assert RuptureEvent.objects.filter(key=rupture.key).exists()


def test_it_round_trips_alliance_checks_byte_for_byte(held_session, supervisor, shipped_instruments):
    make_check(held_session, "therapist", tension="yes", intensity=3, worked_through=4, together=4)
    make_check(held_session, "client", tension="yes", intensity=4, worked_through=2, together=3,
               say_more="Ich fühlte mich nicht gehört — \"wirklich\".")
    other = make_session(held_session.client, days_ago=8)
    make_check(other, "client", declined=True)
    first = export_text()
    doc = json.loads(first)
    assert doc["version"] == 2 and [c["respondent"] for c in doc["checks"]] == ["client", "therapist", "client"]
    assert doc["checks"][0] == {
        "id": AllianceCheck.objects.get(session=other).key, "session": other.key, "respondent": "client",
        "instrument": "alliance_check", "version": 1, "answers": {}, "submitted_at": doc["checks"][0]["submitted_at"],
        "declined": True,
    }

    empty_the_database()
    result = import_doc(doc)
    assert result.applied and result.counts["checks"].created == 3
    assert export_text() == first
    client_check = AllianceCheck.objects.get(session__key=held_session.key, respondent="client")
    assert (client_check.tension, client_check.intensity, client_check.client_reported_rupture) == ("yes", 4, True)
    assert import_doc(doc).changes == 0


def test_a_deidentified_export_drops_the_clients_own_words(held_session, shipped_instruments):
    make_check(held_session, "client", tension="no", together=5, say_more="My sister's name is Ottilie.")
    text = export_text(deidentify=True)
    assert "Ottilie" not in text and "say_more" not in text
    check = json.loads(text)["checks"][0]
    assert check["answers"] == {"tension": "no", "together": 5} and check["id"].startswith("K-")
    assert check["id"] != AllianceCheck.objects.get().key and check["session"] != held_session.key


def test_a_version_1_file_cannot_carry_checks_and_a_bad_check_is_refused_with_its_path(db, shipped_instruments):
    doc = {**caseload(), "checks": []}
    assert [str(p) for p in import_doc(doc).problems] == ["checks: unknown field"]
    doc = {**caseload(), "version": 2, "checks": [
        {"id": "K-1", "session": "S-1", "respondent": "client", "instrument": "alliance_check", "version": 1,
         "answers": {"tension": "maybe", "together": 6, "say_more": "x" * 1001, "colour": "blue"},
         "submitted_at": "2026-01-01T10:00:00", "declined": False},
        {"id": "K-2", "session": "S-9", "respondent": "nurse", "instrument": "srs", "version": 1,
         "answers": {}, "submitted_at": "2026-01-01T10:00:00+00:00", "declined": "no"},
        {"id": "K-3", "session": "S-1", "respondent": "therapist", "instrument": "alliance_check", "version": 1,
         "answers": {"tension": "no"}, "submitted_at": "2026-01-01T10:00:00+00:00", "declined": True},
    ]}
    problems = [str(p) for p in import_doc(doc).problems]
    assert 'checks[0].answers.tension: expected "yes", "no" or "rather_not_say", got "maybe"' in problems
    assert "checks[0].answers.together: expected a whole number from 1 to 5, got 6" in problems
    assert any(p.startswith("checks[0].answers.say_more: expected text of at most 1000 characters") for p in problems)
    assert "checks[0].answers.colour: no such item in this instrument" in problems
    assert any(p.startswith("checks[0].submitted_at:") and "no UTC offset" in p for p in problems)
    assert 'checks[1].session: no session "S-9" in the file or the database' in problems
    assert any(p.startswith("checks[1].respondent:") for p in problems)
    assert 'checks[1].declined: expected true or false, got "no"' in problems
    assert "checks[2].answers: a declined check has no answers" in problems
    assert not AllianceCheck.all_objects.exists() and not RuptureEvent.all_objects.exists()


def test_it_exports_attempts_in_the_order_they_were_recorded(held_session):
    rupture = make_rupture(held_session)
    later = make_session(held_session.client, days_ago=0)
    make_attempt(rupture, later, strategy="invite_discussion")
    make_attempt(rupture, held_session, strategy="provide_rationale")
    attempts = json.loads(export_text())["ruptures"][0]["attempts"]
    assert [a["strategy"] for a in attempts] == ["invite_discussion", "provide_rationale"]


def test_it_orders_the_export_by_key_and_time_whatever_the_insertion_order(db):
    doc = caseload()
    doc["users"].reverse()
    doc["clients"].reverse()
    doc["sessions"].reverse()
    doc["ruptures"].reverse()
    import_doc(doc)
    exported = json.loads(export_text())
    assert [u["username"] for u in exported["users"]] == ["apatel", "boss", "dlee", "mokafor"]
    assert [s["id"] for s in exported["sessions"]] == ["S-1", "S-2", "S-3", "S-4"]
    assert [r["id"] for r in exported["ruptures"]] == ["R-1", "R-2", "R-3"]
    assert exported["sessions"][1]["starts_at"] == "2026-11-27T10:00:00+00:00"


# --- Idempotence and updates -----------------------------------------------------------------


def test_it_changes_nothing_when_the_same_file_is_imported_twice(db):
    import_doc(caseload())
    before = database_state()
    again = import_doc(caseload())
    assert again.applied and again.changes == 0
    assert database_state() == before


def test_it_updates_a_changed_rupture_and_keeps_its_history(db):
    import_doc(caseload())
    rupture = RuptureEvent.objects.get(key="R-1")
    doc = caseload()
    doc["ruptures"][0].update(intensity=4, plan="Name the silence gently.")
    result = import_doc(doc)
    assert result.counts["ruptures"].as_dict() == {"created": 0, "updated": 1, "unchanged": 2}
    assert result.counts["sessions"].updated == 0
    updated = RuptureEvent.objects.get(key="R-1")
    assert (updated.intensity, updated.plan) == (4, "Name the silence gently.")
    assert updated.pk == rupture.pk and updated.created_at == rupture.created_at
    assert updated.version == rupture.version + 1 and updated.updated_at > rupture.updated_at


def test_it_keeps_what_the_format_does_not_carry_on_reimport(db):
    import_doc(caseload())
    RuptureEvent.objects.filter(key="R-1").update(
        hypothesis="Fears sharing.", internal_signals_other="x"
    )
    TherapySession.objects.filter(key="S-1").update(duration_minutes=90, note="Long one.")
    doc = caseload()
    doc["ruptures"][0]["plan"] = "Changed."
    import_doc(doc)
    rupture = RuptureEvent.objects.get(key="R-1")
    assert (rupture.hypothesis, rupture.internal_signals_other, rupture.plan) == (
        "Fears sharing.",
        "x",
        "Changed.",
    )
    session = TherapySession.objects.get(key="S-1")
    assert (session.duration_minutes, session.note) == (90, "Long one.")


def test_it_matches_repair_attempts_by_their_place_in_the_rupture(db):
    import_doc(caseload())
    first_ids = list(
        RepairAttempt.objects.filter(rupture__key="R-1").order_by("pk").values_list("pk", flat=True)
    )
    doc = caseload()
    attempts = doc["ruptures"][0]["attempts"]
    attempts[1]["note"] = "Asked, and it helped."
    attempts.append(
        {"session": "S-2", "strategy": "link_to_session_pattern", "outcome": "resolved"}
    )
    result = import_doc(doc)
    assert result.counts["attempts"].as_dict() == {"created": 1, "updated": 1, "unchanged": 2}
    rows = list(
        RepairAttempt.objects.filter(rupture__key="R-1").order_by("pk").values_list("pk", "note")
    )
    assert [pk for pk, _ in rows[:2]] == first_ids
    assert [note for _, note in rows] == ["", "Asked, and it helped.", ""]


def test_it_leaves_out_fields_the_file_leaves_out(db):
    import_doc(caseload())
    doc = caseload()
    del doc["clients"][1]["name"]
    del doc["users"][1]["email"]
    del doc["ruptures"][0]["note"]
    assert import_doc(doc).changes == 0
    assert Client.objects.get(code="C-0002").name == "Jo Bloggs"
    assert RuptureEvent.objects.get(key="R-1").noticed == NOTE


def test_it_moves_a_therapist_to_another_supervisor(db):
    import_doc(caseload())
    doc = caseload()
    doc["users"].append({"username": "rlind", "role": "supervisor"})
    doc["users"][1]["supervisor"] = "rlind"
    doc["users"][2]["supervisor"] = None
    result = import_doc(doc)
    assert result.counts["supervision"].as_dict() == {"created": 1, "updated": 2, "unchanged": 0}
    assert (
        SupervisionLink.objects.get(therapist__username="dlee", ends_on=None).supervisor.username
        == "rlind"
    )
    assert not SupervisionLink.objects.filter(therapist__username="apatel", ends_on=None).exists()
    assert SupervisionLink.objects.filter(ends_on__isnull=False).count() == 2


def test_it_changes_a_role_through_the_role_service(db):
    import_doc(caseload())
    doc = caseload()
    doc["users"][2]["role"] = "supervisor"
    doc["users"][2]["supervisor"] = None
    # A supervisor has no clients: apatel's go to dlee, with their sessions.
    for record in doc["clients"] + doc["sessions"]:
        if record["therapist"] == "apatel":
            record["therapist"] = "dlee"
    assert import_doc(doc).problems == [
        Problem("users[2].role", '"apatel" is a therapist in the database; an import changes a person\'s role '
                                 "only when given --allow-role-changes"),
    ]
    assert import_doc(doc, allow_role_changes=True).role_changes == [("apatel", "therapist", "supervisor")]
    apatel = User.objects.get(username="apatel")
    assert apatel.role == Role.SUPERVISOR
    assert list(apatel.groups.values_list("name", flat=True)) == ["supervisor"]


def test_it_leaves_an_existing_persons_password_alone(therapist):
    doc = {
        "format": "caseload",
        "version": 1,
        "users": [{"username": "dlee", "name": "Dana Lee-Smith", "role": "therapist"}],
    }
    import_doc(doc)
    therapist.refresh_from_db()
    assert therapist.has_usable_password() and therapist.display_name == "Dana Lee-Smith"


# --- Bad input: a specific message with its JSON path, nothing written ------------------------


def _set(path, value):
    """A change to the example file: `path` as in a problem report, e.g. ruptures[0].markers[1]."""

    def change(doc):
        *parents, last = _steps(path)
        target = doc
        for step in parents:
            target = target[step]
        if value is _DELETE:
            del target[last]
        elif isinstance(last, int) and last == len(target):
            target.append(value)
        else:
            target[last] = value
        return doc

    return change


_DELETE = object()


def _steps(path):
    steps = []
    for part in path.replace("]", "").replace("[", ".").split("."):
        steps.append(int(part) if part.isdigit() else part)
    return steps


def _duplicate(section, index):
    def change(doc):
        doc[section].append(copy.deepcopy(doc[section][index]))
        return doc

    return change


BAD_INPUT = [
    # (what is wrong, change to the file, expected "path: message" start)
    (
        "wrong format",
        _set("format", "rupture-log"),
        'format: expected "caseload", got "rupture-log"',
    ),
    ("no format", _set("format", _DELETE), 'format: expected "caseload", got nothing'),
    ("wrong version", _set("version", 3), "version: this app reads versions 1 or 2, got 3"),
    ("version as text", _set("version", "1"), 'version: this app reads versions 1 or 2, got "1"'),
    (
        "unknown marker",
        _set("ruptures[0].markers[1]", "sulking"),
        'ruptures[0].markers[1]: unknown marker "sulking"',
    ),
    (
        "unknown strategy",
        _set("ruptures[0].attempts[1].strategy", "silence"),
        'ruptures[0].attempts[1].strategy: unknown strategy "silence"',
    ),
    (
        "unknown session status",
        _set("sessions[3].status", "postponed"),
        'sessions[3].status: unknown session status "postponed" '
        "(expected scheduled, held, cancelled or no_show)",
    ),
    (
        "unknown client status",
        _set("clients[1].status", "closed"),
        'clients[1].status: unknown client status "closed"',
    ),
    (
        "unknown repair status",
        _set("ruptures[1].repair_status", "fixed"),
        'ruptures[1].repair_status: unknown repair status "fixed"',
    ),
    (
        "unknown role",
        _set("users[3].role", "owner"),
        'users[3].role: unknown role "owner" (expected therapist, supervisor or admin)',
    ),
    (
        "unknown source",
        _set("ruptures[2].source", "astrology"),
        'ruptures[2].source: unknown source "astrology"',
    ),
    (
        "unknown signal",
        _set("ruptures[1].internal_signals[1]", "hungry"),
        'ruptures[1].internal_signals[1]: unknown internal signal "hungry"',
    ),
    ("unknown kind", _set("ruptures[0].kind", "sulk"), 'ruptures[0].kind: unknown kind "sulk"'),
    ("unknown actor", _set("ruptures[0].actor", "both"), 'ruptures[0].actor: unknown actor "both"'),
    (
        "intensity 0",
        _set("ruptures[0].intensity", 0),
        "ruptures[0].intensity: intensity 0 is outside 1-5",
    ),
    (
        "intensity 6",
        _set("ruptures[2].intensity", 6),
        "ruptures[2].intensity: intensity 6 is outside 1-5",
    ),
    (
        "intensity as text",
        _set("ruptures[0].intensity", "3"),
        'ruptures[0].intensity: expected a whole number from 1 to 5, got "3"',
    ),
    (
        "intensity as a fraction",
        _set("ruptures[0].intensity", 2.5),
        "ruptures[0].intensity: expected a whole number from 1 to 5, got 2.5",
    ),
    (
        "unknown client",
        _set("sessions[2].client", "C-9999"),
        'sessions[2].client: no client "C-9999" in the file or the database',
    ),
    (
        "unknown therapist",
        _set("clients[0].therapist", "ghost"),
        'clients[0].therapist: no user "ghost" in the file or the database',
    ),
    (
        "unknown supervisor",
        _set("users[1].supervisor", "ghost"),
        'users[1].supervisor: no user "ghost" in the file or the database',
    ),
    (
        "unknown session",
        _set("ruptures[1].session", "S-404"),
        'ruptures[1].session: no session "S-404" in the file or the database',
    ),
    (
        "unknown attempt session",
        _set("ruptures[0].attempts[0].session", "S-404"),
        'ruptures[0].attempts[0].session: no session "S-404" in the file or the database',
    ),
    (
        "duplicate username",
        _duplicate("users", 1),
        'users[4].username: duplicate username "dlee" (first at users[1])',
    ),
    (
        "duplicate client code",
        _duplicate("clients", 0),
        'clients[2].code: duplicate client code "C-0001" (first at clients[0])',
    ),
    (
        "duplicate session id",
        _duplicate("sessions", 2),
        'sessions[4].id: duplicate session id "S-3" (first at sessions[2])',
    ),
    (
        "duplicate rupture id",
        _duplicate("ruptures", 0),
        'ruptures[3].id: duplicate rupture id "R-1" (first at ruptures[0])',
    ),
    (
        "timestamp without offset",
        _set("sessions[1].starts_at", "2026-11-27T10:00:00"),
        'sessions[1].starts_at: "2026-11-27T10:00:00" has no UTC offset',
    ),
    (
        "date for a timestamp",
        _set("sessions[1].starts_at", "2026-11-27"),
        'sessions[1].starts_at: "2026-11-27" has no UTC offset',
    ),
    (
        "not a timestamp",
        _set("sessions[1].starts_at", "next Tuesday"),
        "sessions[1].starts_at: expected an ISO 8601 timestamp with offset",
    ),
    (
        "client-side rupture without markers",
        _set("ruptures[0].markers", []),
        "ruptures[0].markers: a client-side rupture needs at least one marker",
    ),
    # What the database's own constraints and trigger would refuse, found first:
    (
        "unaddressed attempt outcome",
        _set("ruptures[0].attempts[0].outcome", "unaddressed"),
        'ruptures[0].attempts[0].outcome: an attempt\'s outcome cannot be "unaddressed"',
    ),
    (
        "attempt in another client's session",
        _set("ruptures[0].attempts[0].session", "S-3"),
        'ruptures[0].attempts[0].session: session "S-3" is client "C-0002"\'s, not "C-0001"\'s',
    ),
    (
        "attempt before the rupture",
        _set("ruptures[0].session", "S-2"),
        'ruptures[0].attempts[0].session: session "S-1" is before the rupture\'s session',
    ),
    (
        "minute out of range",
        _set("ruptures[0].minute", 481),
        "ruptures[0].minute: expected a whole number of minutes from 0 to 480 or null, got 481",
    ),
    (
        "case code with a space",
        _set("clients[0].code", "C 1"),
        "clients[0].code: expected 1-32 letters",
    ),
    (
        "username with a space",
        _set("users[3].username", "big boss"),
        "users[3].username: expected 1-150",
    ),
    (
        "NUL in a note",
        _set("ruptures[0].note", "a\u0000b"),
        "ruptures[0].note: contains a NUL character",
    ),
    (
        "plan over the limit",
        _set("ruptures[0].plan", "p" * 2001),
        "ruptures[0].plan: longer than 2000 characters (2001)",
    ),
    (
        "attempt note over the limit",
        _set("ruptures[0].attempts[0].note", "n" * 2001),
        "ruptures[0].attempts[0].note: longer than 2000 characters (2001)",
    ),
    (
        "lone surrogate",
        _set("ruptures[0].plan", "\ud800"),
        "ruptures[0].plan: contains an unpaired surrogate",
    ),
    (
        "self-supervision",
        _set("users[1].supervisor", "dlee"),
        "users[1].supervisor: a user cannot supervise themself",
    ),
    (
        "marker twice",
        _set("ruptures[0].markers[1]", "minimal_response"),
        'ruptures[0].markers[1]: marker "minimal_response" is listed twice',
    ),
    ("unknown field", _set("ruptures[0].intensty", 3), "ruptures[0].intensty: unknown field"),
    ("missing field", _set("sessions[0].status", _DELETE), "sessions[0].status: missing"),
    (
        "record not an object",
        _set("clients[1]", "C-0002"),
        "clients[1]: expected an object, got text",
    ),
    ("section not a list", _set("users", {}), "users: expected a list, got an object"),
    (
        "bad e-mail",
        _set("users[0].email", "not-an-address"),
        "users[0].email: not an e-mail address",
    ),
    (
        "bad date",
        _set("clients[0].started_on", "12/01/2026"),
        'clients[0].started_on: expected a date like 2026-01-12, got "12/01/2026"',
    ),
    (
        "implausible year",
        _set("sessions[0].starts_at", "0226-11-20T10:00:00+00:00"),
        'sessions[0].starts_at: "0226-11-20T10:00:00+00:00" is not a year from 1900 to 2199',
    ),
]


@pytest.fixture
def imported(db):
    """A database holding the example file, so that 'exactly as before' is not trivially empty."""
    import_doc(caseload())
    return database_state()


@pytest.mark.parametrize(
    ("what", "change", "message"), BAD_INPUT, ids=[case[0] for case in BAD_INPUT]
)
def test_it_refuses_bad_input_with_its_path_and_writes_nothing(
    imported, tmp_path, what, change, message
):
    doc = change(caseload())
    doc["ruptures"][1]["plan"] = "A change that must not be applied."
    path = tmp_path / "caseload.json"
    path.write_text(json.dumps(doc))
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_caseload", str(path), stdout=io.StringIO(), stderr=err)
    assert any(line.startswith(message) for line in err.getvalue().splitlines()), err.getvalue()
    assert database_state() == imported


def test_it_refuses_an_attempt_in_a_session_before_the_rupture(imported):
    doc = caseload()
    doc["ruptures"][0]["attempts"][0]["session"] = "S-2"
    doc["ruptures"][0]["session"] = "S-2"
    doc["ruptures"][0]["attempts"][1]["session"] = "S-1"
    problems = [str(p) for p in import_doc(doc).problems]
    assert problems == [
        'ruptures[0].attempts[1].session: session "S-1" is before the rupture\'s session'
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b'{"format": "caseload",',
            "$: not valid JSON: Expecting property name enclosed in double quotes "
            "(line 1, column 23)",
        ),
        (b"", "$: not valid JSON: Expecting value (line 1, column 1)"),
        (b'{"version": NaN}', "$: not valid JSON: NaN is not a JSON number"),
        (b'{"format": "\xc3\x28"}', "$: not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, "$: not a caseload file: nested too deeply"),
        (b'["caseload"]', '$: expected a JSON object with "format": "caseload", got a list'),
    ],
    ids=["truncated", "empty", "NaN", "not UTF-8", "too deep", "a list"],
)
def test_it_refuses_what_is_not_a_caseload_file(imported, data, message):
    result = run_import(data)
    assert not result.applied
    assert [str(p) for p in result.problems][0].startswith(message)
    assert database_state() == imported


def test_it_lists_every_problem_down_to_the_last_record_of_a_large_file(db):
    doc = caseload()
    for n in range(5, 5005):
        doc["sessions"].append(
            {
                "id": f"S-{n}",
                "client": "C-0001",
                "therapist": "dlee",
                "starts_at": "2026-11-20T10:00:00+00:00",
                "status": "held",
            }
        )
    doc["sessions"][4]["status"] = "postponed"
    doc["sessions"][2503]["starts_at"] = "2026-11-20 10:00"
    doc["sessions"][-1]["client"] = "C-404"
    result = import_doc(doc)
    assert [p.path for p in result.problems] == [
        "sessions[4].status",
        "sessions[2503].starts_at",
        "sessions[5003].client",
    ]
    assert not TherapySession.objects.exists()


def test_it_reports_a_bad_session_once_not_again_at_each_reference(db):
    doc = caseload()
    doc["sessions"][0]["starts_at"] = "2026-11-20T10:00:00"
    assert [p.path for p in import_doc(doc).problems] == ["sessions[0].starts_at"]


def test_it_exits_non_zero_from_the_command_line(db, tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text('{"format": "caseload", "version": 7}')
    from django.core.management import ManagementUtility

    with pytest.raises(SystemExit) as exit_:
        ManagementUtility(["manage.py", "import_caseload", str(path)]).execute()
    assert exit_.value.code == 1
    assert "version: this app reads versions 1 or 2, got 7" in capsys.readouterr().err


def test_it_refuses_to_move_a_session_to_another_client(imported):
    doc = caseload()
    doc["sessions"][0]["client"] = "C-0002"
    problems = [str(p) for p in import_doc(doc).problems]
    assert problems[0] == (
        'sessions[0].client: session "S-1" is client "C-0001"\'s in the database; '
        "an import cannot move it to another client"
    )
    assert database_state() == imported


def test_it_refuses_to_move_a_session_before_a_rupture_whose_attempt_it_holds(imported):
    # R-1's second attempt is in S-2. The file moves S-2 to before S-1 and no longer
    # lists that attempt: only the check after writing can see it, and it undoes everything.
    doc = caseload()
    doc["sessions"][1]["starts_at"] = "2026-11-19T10:00:00+00:00"
    doc["ruptures"][0]["attempts"].pop()
    doc["clients"][0]["status"] = "paused"
    problems = [str(p) for p in import_doc(doc).problems]
    assert problems == [
        'ruptures[0].session: would leave a repair attempt of rupture "R-1" in session "S-2", '
        'which is then not the rupture\'s session "S-1" or a later one of the same client'
    ]
    assert database_state() == imported


def test_it_undoes_everything_when_something_unexpected_fails(imported, monkeypatch):
    def fail(self, rupture_ids):
        raise RuntimeError("disk full")

    monkeypatch.setattr(importer._Apply, "attempts", fail)
    doc = caseload()
    doc["users"].append({"username": "newbie", "role": "therapist"})
    doc["ruptures"][0]["plan"] = "Changed."
    with pytest.raises(RuntimeError):
        import_doc(doc)
    assert database_state() == imported


def test_it_says_what_a_dry_run_would_do_and_writes_nothing(imported, tmp_path):
    doc = caseload()
    doc["ruptures"][0]["plan"] = "Changed."
    doc["users"].append({"username": "newbie", "role": "therapist", "supervisor": "mokafor"})
    path = tmp_path / "caseload.json"
    path.write_text(json.dumps(doc))
    out = io.StringIO()
    call_command("import_caseload", str(path), "--dry-run", stdout=out)
    assert "Would change:" in out.getvalue() and "Dry run: nothing was written." in out.getvalue()
    assert "ruptures           0 new        1 updated        2 unchanged" in out.getvalue()
    assert "users              1 new        0 updated        4 unchanged" in out.getvalue()
    assert database_state() == imported


def test_it_checks_without_the_database_in_pure_python():
    doc, problems = parse(as_bytes(caseload()))
    assert problems == []
    problems, clean = check(doc, Existing())
    assert problems == [] and clean.counts() == {
        "users": 4,
        "clients": 2,
        "sessions": 4,
        "ruptures": 3,
        "attempts": 3,
        "checks": 0,
    }
    doc["sessions"] = []
    problems, clean = check(doc, Existing())
    assert clean is None and len(problems) == 6  # three ruptures and three attempts: no sessions


# --- Export -----------------------------------------------------------------------------------


def test_it_writes_the_export_to_a_file_or_standard_output(imported, tmp_path):
    out = io.StringIO()
    call_command("export_caseload", stdout=out)
    target = tmp_path / "backup.json"
    call_command("export_caseload", "-o", str(target), stderr=io.StringIO())
    assert target.read_text() == out.getvalue() == export_text()
    assert target.stat().st_mode & 0o777 == 0o600
    assert list(tmp_path.iterdir()) == [target]


def test_it_exports_an_empty_database_as_an_empty_caseload(db):
    assert json.loads(export_text()) == {
        "format": "caseload",
        "version": 2,
        "users": [],
        "clients": [],
        "sessions": [],
        "ruptures": [],
        "checks": [],
    }


def test_it_deidentifies_an_export(imported):
    text = export_text(deidentify=True)
    for secret in [
        "Dana Lee",
        "d@example.org",
        "M. Okafor",
        "Jo Bloggs",
        NOTE,
        PLAN,
        "I disengaged",
        "Asked how it landed",
        "Revisit the goals",
        "dlee",
        "mokafor",
        "C-0001",
        "C-0002",
        '"S-1"',
        '"R-1"',
        '"name"',
        '"email"',
        '"note"',
        '"plan"',
    ]:
        assert secret not in text, secret
    doc = json.loads(text)
    dlee = pseudonym("user", "dlee")
    assert {
        "username": dlee,
        "role": "therapist",
        "supervisor": pseudonym("user", "mokafor"),
    } in doc["users"]
    assert doc["clients"][0]["code"].startswith("C-") and len(doc["clients"][0]["code"]) == 18
    # Timestamps and the clinical coding are kept.
    assert sorted(s["starts_at"] for s in doc["sessions"]) == [
        "2026-11-20T10:00:00+00:00",
        "2026-11-21T14:30:00+00:00",
        "2026-11-27T10:00:00+00:00",
        "2026-11-28T14:30:00+00:00",
    ]
    r1 = next(r for r in doc["ruptures"] if r["id"] == pseudonym("rupture", "R-1"))
    assert r1["markers"] == ["minimal_response"] and r1["intensity"] == 3 and r1["minute"] == 25
    assert r1["attempts"][1] == {
        "session": pseudonym("session", "S-2"),
        "strategy": "invite_discussion",
        "outcome": "attempted",
        "stage_reached": "",
    }


def test_it_gives_stable_pseudonyms_keyed_by_the_site_secret(imported, settings):
    first = export_text(deidentify=True)
    assert export_text(deidentify=True) == first
    settings.SECRET_KEY = "another-site-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
    other = export_text(deidentify=True)
    assert other != first and pseudonym("user", "dlee") not in first


def test_the_old_deidentify_flag_still_works_with_a_deprecation_message(imported):
    out, err = io.StringIO(), io.StringIO()
    call_command("export_caseload", "--deidentify", stdout=out, stderr=err)
    assert out.getvalue() == export_text(deidentify=True)
    assert "--deidentify is deprecated" in err.getvalue() and "--pseudonymised" in err.getvalue()


def test_it_marks_a_deidentified_export_and_refuses_to_import_it(imported):
    doc = json.loads(export_text(deidentify=True))
    assert doc["pseudonymised"] is True
    result = import_doc(doc)
    assert not result.applied and [p.path for p in result.problems] == ["pseudonymised"]
    assert "would add the whole clinic a second time" in result.problems[0].message
    assert Client.objects.count() == 2


# --- Audit ---------------------------------------------------------------------------------


def test_it_records_each_import_and_export_without_clinical_text(db, tmp_path):
    path = tmp_path / "caseload.json"
    path.write_text(json.dumps(caseload()))
    call_command("import_caseload", str(path), stdout=io.StringIO())
    call_command("import_caseload", str(path), "--dry-run", stdout=io.StringIO())
    bad = caseload()
    bad["ruptures"][0]["markers"] = ["sulking"]
    path.write_text(json.dumps(bad))
    with pytest.raises(CommandError):
        call_command("import_caseload", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    call_command("export_caseload", "--pseudonymised", stdout=io.StringIO())

    events = list(AccessEvent.objects.order_by("pk"))
    assert [(e.action, e.what, e.user, e.detail.get("outcome")) for e in events] == [
        ("import", "caseload", None, "applied"),
        ("import", "caseload", None, "checked"),
        ("import", "caseload", None, "refused"),
        ("export", "caseload", None, None),
    ]
    assert events[0].detail["counts"]["ruptures"] == {"created": 3, "updated": 0, "unchanged": 0}
    assert events[2].detail["problems"] == 1 and events[2].detail["dry_run"] is False
    assert events[3].detail == {
        "via": "command",
        "pseudonymised": True,
        "counts": {"users": 4, "clients": 2, "sessions": 4, "ruptures": 3, "attempts": 3, "checks": 0},
    }
    logged = json.dumps([e.detail for e in events])
    for text in [NOTE, PLAN, "sulking", "Dana Lee", "C-0001"]:
        assert text not in logged


def test_it_imports_and_exports_a_clinic_in_a_bounded_number_of_queries(
    db, django_assert_max_num_queries, shipped_instruments
):
    doc = {**caseload(), "version": 2, "checks": []}
    for n in range(200):
        doc["sessions"].append(
            {
                "id": f"S-x{n}",
                "client": "C-0001",
                "therapist": "dlee",
                "starts_at": "2026-11-20T10:00:00+00:00",
                "status": "held",
            }
        )
        doc["ruptures"].append(
            {
                "id": f"R-x{n}",
                "session": f"S-x{n}",
                "kind": "withdrawal",
                "actor": "client",
                "markers": ["denial"],
                "intensity": 2,
                "source": "unknown",
                "repair_status": "resolved",
                "attempts": [
                    {"session": f"S-x{n}", "strategy": "invite_discussion", "outcome": "resolved"}
                ],
            }
        )
        doc["checks"].append({
            "id": f"K-x{n}", "session": f"S-x{n}", "respondent": "client", "instrument": "alliance_check",
            "version": 1, "answers": {"tension": "no", "together": 4}, "submitted_at": "2026-01-01T10:00:00+00:00",
            "declined": False,
        })
    # 200 sessions, ruptures, attempts and checks: a query per row would show. People go
    # through set_role one by one (four here, about seven queries each); the rest is
    # set-at-a-time.
    with django_assert_max_num_queries(51):
        assert import_doc(doc).applied
    with django_assert_max_num_queries(11):
        export_text()
    # Reading the database for a file already applied: one query more for its checks.
    with django_assert_max_num_queries(15):
        assert import_doc(doc).changes == 0


def test_it_exports_timestamps_in_utc_with_their_microseconds(held_session):
    held_session.starts_at = timezone.now().replace(microsecond=123456) - timedelta(days=1)
    held_session.save()
    exported = json.loads(export_text())["sessions"][0]["starts_at"]
    assert exported.endswith("+00:00") and ".123456" in exported
    assert instant(exported) == held_session.starts_at


def test_it_exports_a_therapists_supervisor_from_the_open_link(supervisor, therapist):
    other = make_user(Role.SUPERVISOR, username="zz-old")
    SupervisionLink.objects.create(
        supervisor=other,
        therapist=make_user(username="t2"),
        starts_on="2025-01-01",
        ends_on="2025-06-01",
    )
    users = {u["username"]: u for u in json.loads(export_text())["users"]}
    assert users["dlee"]["supervisor"] == "mokafor"
    assert users["t2"]["supervisor"] is None


def test_an_export_without_free_text_leaves_the_clients_words_out_and_an_import_keeps_them(
    held_session, shipped_instruments
):
    make_check(held_session, "client", tension="yes", together=3, say_more="Only for my therapist.")
    parts = []
    export_caseload(parts.append, free_text=False)
    doc = json.loads("".join(parts))
    assert doc["free_text"] == "omitted" and doc["checks"][0]["answers"] == {"tension": "yes", "together": 3}
    doc["checks"][0]["answers"]["together"] = 2
    assert import_doc(doc).applied
    check = AllianceCheck.objects.get()
    assert check.answers == {"tension": "yes", "together": 2, "say_more": "Only for my therapist."}
