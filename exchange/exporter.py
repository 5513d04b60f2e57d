"""Export the caseload in the exchange format: the same data always gives the same bytes.

Order: users by username, clients by code, sessions by client then time then id,
ruptures in the order of their sessions then by id, repair attempts in the order they
were recorded. Strings are compared by code point in Python, never by the database's
collation, so two databases with different locales still agree. Timestamps are
written in UTC. One record per line keeps a diff of two exports readable.

A pseudonymised export (`deidentify=True`, `--pseudonymised`) leaves out names, e-mails and
every free-text field (a client's free-text answers to an alliance check included), and
replaces usernames, client codes and session, rupture and check ids with pseudonyms: an HMAC
of the key under the site's secret, so the same record gets the same pseudonym in every
export, and the pseudonym cannot be turned back into the key. It keeps exact dates, so it
is not de-identified: reports/research.py writes that extract.
It says so at the top of the file (`"pseudonymised": true`), and the importer refuses it.

Deleted records: a full export is a backup, so it carries them, each with `"deleted"`
naming its deletion in the `deletions` section, and an import keeps them hidden. A
pseudonymised export leaves them out, with everything deleted along with them.

An export without free text (`free_text=False`, the clinic admin's web export) keeps
names of people and every code, but leaves out client names and everything written in
words about a client (FREE_TEXT, and a check's free-text answers), and says so in a
top-level `"free_text": "omitted"`. Importing it changes no note: a field a file leaves
out is left as it is. The full backup, clinical text included, is the operator's
`manage.py export_caseload`.
"""

import json
from collections import defaultdict
from contextlib import contextmanager
from datetime import UTC

from django.db import connection, transaction
from django.utils.crypto import salted_hmac

from accounts.models import SupervisionLink, User
from audit.models import Deletion
from checks.models import AllianceCheck, Instrument
from exchange.validation import FORMAT, PSEUDONYMISED, VERSION
from ruptures.models import RepairAttempt, RuptureEvent
from sessions.models import Client, TherapySession

LINES_PER_WRITE = 2000
# How a deletion's starting record is named in files: the section it is listed in.
DELETED_RECORD_TYPES = {
    Client._meta.label_lower: "client",
    TherapySession._meta.label_lower: "session",
    RuptureEvent._meta.label_lower: "rupture",
    RepairAttempt._meta.label_lower: "attempt",
}
# What an export without free text leaves out, per section ("attempts": inside ruptures).
# A check's free-text answers go too: the items of type "text" of its instrument.
FREE_TEXT = {
    "clients": ("name",),
    "ruptures": ("note", "plan", "hypothesis", "internal_signals_other"),
    "attempts": ("note",),
    "deletions": ("reason",),
}
PSEUDONYM_PREFIX = {"user": "U-", "client": "C-", "session": "S-", "rupture": "R-", "check": "K-"}


@contextmanager
def snapshot():
    """One consistent view of the database for every query of an export.

    Under READ COMMITTED a session saved between two of the export's queries could be
    referenced by a rupture the export contains but be missing from its sessions: a
    file that would not import. REPEATABLE READ has to be the transaction's first
    statement, so it is set only when this block starts the transaction (a test's
    transaction has already begun, and sees nothing concurrent anyway).
    """
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def pseudonym(kind: str, key: str) -> str:
    digest = salted_hmac("exchange.pseudonym", f"{kind}:{key}", algorithm="sha256").hexdigest()
    return PSEUDONYM_PREFIX[kind] + digest[:16]


class _Keys:
    """The keys an export prints: as stored, or their pseudonyms."""

    def __init__(self, deidentify):
        self.deidentify = deidentify
        self.seen = defaultdict(dict)

    def __call__(self, kind, key):
        if not self.deidentify or key is None:
            return key
        made = self.seen[kind]
        if key not in made:
            made[key] = pseudonym(kind, key)
        return made[key]

    def check_unique(self):
        # 64 bits of HMAC: a clash is not expected in any clinic's lifetime, but two
        # records under one pseudonym would be a silently wrong file, so look.
        for kind, made in self.seen.items():
            if len(set(made.values())) != len(made):
                raise RuntimeError(f"two {kind} keys share a pseudonym; widen PSEUDONYM digits")


def export_caseload(write, *, deidentify=False, free_text=True) -> dict:
    """Write the whole caseload through `write(str)`; return how many records of each kind."""
    keys = _Keys(deidentify)
    # A backup keeps deleted records (hidden, with their deletion); a de-identified copy
    # is for reading, and a deleted record is not there to be read.
    rows = _Rows(deleted=not deidentify)
    with snapshot():
        users = _users(keys, deidentify)
        clients = _clients(keys, deidentify, rows)
        sessions, session_order = _sessions(keys, rows)
        ruptures, attempt_count = _ruptures(keys, deidentify, session_order, rows)
        checks = _checks(keys, deidentify or not free_text, session_order, rows)
        # Last: it lists the deletions the rows above name.
        deletions = _deletions(rows) if rows.deleted else []
    keys.check_unique()
    write(f'{{\n  "format": "{FORMAT}",\n  "version": {VERSION},\n')
    if deidentify:
        write(f'  "{PSEUDONYMISED}": true,\n')
    if not free_text:
        _omit_free_text(clients, ruptures, deletions)
        write('  "free_text": "omitted",\n')
    sections = [
        ("users", users),
        ("clients", clients),
        ("sessions", sessions),
        ("ruptures", ruptures),
        ("checks", checks),
    ]
    if deletions:
        sections.append(("deletions", deletions))
    for n, (name, records) in enumerate(sections):
        _write_list(write, name, records, last=n == len(sections) - 1)
    write("}\n")
    return {
        "users": len(users),
        "clients": len(clients),
        "sessions": len(sessions),
        "ruptures": len(ruptures),
        "attempts": attempt_count,
        "checks": len(checks),
    }


def _omit_free_text(clients, ruptures, deletions):
    # A deletion's reason is words about the client too.
    for deletion in deletions:
        for name in FREE_TEXT["deletions"]:
            deletion.pop(name, None)
    for client in clients:
        for name in FREE_TEXT["clients"]:
            client.pop(name, None)
    for rupture in ruptures:
        for name in FREE_TEXT["ruptures"]:
            rupture.pop(name, None)
        for attempt in rupture.get("attempts", ()):
            for name in FREE_TEXT["attempts"]:
                attempt.pop(name, None)


def _write_list(write, name, records, *, last):
    if not records:
        write(f'  "{name}": []{"" if last else ","}\n')
        return
    write(f'  "{name}": [\n')
    end = len(records) - 1
    lines = []
    for i, item in enumerate(records):
        lines.append("    " + json.dumps(item, ensure_ascii=False) + ("\n" if i == end else ",\n"))
        if len(lines) == LINES_PER_WRITE:
            write("".join(lines))
            lines = []
    write("".join(lines))
    write("  ]\n" if last else "  ],\n")


def _sort(records, sort_key):
    return [record for _, record in sorted(((sort_key(r), r) for r in records), key=lambda p: p[0])]


def _users(keys, deidentify):
    supervisors = dict(
        SupervisionLink.objects.filter(ends_on__isnull=True).values_list(
            "therapist__username", "supervisor__username"
        )
    )
    records = []
    for username, name, email, role in User.objects.values_list(
        "username", "display_name", "email", "role"
    ):
        record = {"username": keys("user", username)}
        if not deidentify:
            record["name"] = name
            record["email"] = email
        record["role"] = role
        record["supervisor"] = keys("user", supervisors.get(username))
        records.append(record)
    return _sort(records, lambda r: r["username"])


class _Rows:
    """Which rows an export reads: every row of a backup, or the alive ones."""

    def __init__(self, *, deleted):
        self.deleted = deleted
        self.used = set()  # the Deletions the exported rows name
        # Every deletion still in force, by id: a few per client at most.
        self.keys = dict(Deletion.objects.filter(restored_at__isnull=True).values_list("pk", "key")) if deleted else {}

    def of(self, model):
        return model.all_objects.all() if self.deleted else model.objects.all()

    def mark(self, record, deletion_id):
        # Put last, after every field a version 1 reader knows.
        if deletion_id is not None:
            self.used.add(deletion_id)
            record["deleted"] = self.keys[deletion_id]
        return record


def _clients(keys, deidentify, rows):
    records = []
    for code, name, therapist, status, started_on, ending, deletion in rows.of(Client).values_list(
        "code", "name", "therapist__username", "status", "started_on", "ending", "deletion"
    ):
        record = {"code": keys("client", code)}
        if not deidentify:
            record["name"] = name
        record.update(
            therapist=keys("user", therapist), status=status, started_on=started_on.isoformat()
        )
        record["ending"] = ending
        records.append(rows.mark(record, deletion))
    return _sort(records, lambda r: r["code"])


def _timestamp(value):
    return value.astimezone(UTC).isoformat()


def _sessions(keys, rows):
    """The sessions in export order, and each stored key's place in it (the ruptures follow it)."""
    records = []
    for key, client, therapist, starts_at, status, deletion in rows.of(TherapySession).values_list(
        "key", "client__code", "therapist__username", "starts_at", "status", "deletion"
    ):
        records.append(rows.mark(
            {
                "id": keys("session", key),
                "client": keys("client", client),
                "therapist": keys("user", therapist),
                "starts_at": _timestamp(starts_at),
                "status": status,
                # Sorted on the instant, not on the text, and dropped before writing.
                "_at": starts_at,
                "_key": key,
            }, deletion
        ))
    records = _sort(records, lambda r: (r["client"], r["_at"], r["id"]))
    order = {}
    for position, record in enumerate(records):
        order[record.pop("_key")] = position
        del record["_at"]
    return records, order


def _ruptures(keys, deidentify, session_order, rows):
    attempts = defaultdict(list)
    attempt_count = 0
    # Recorded order: the file's order for imported attempts, creation order for the rest.
    for rupture_id, session, strategy, outcome, note, stage, deletion in rows.of(RepairAttempt).order_by(
        "rupture_id", "pk"
    ).values_list("rupture_id", "session__key", "strategy", "outcome", "note", "stage_reached", "deletion"):
        attempt = {"session": keys("session", session), "strategy": strategy, "outcome": outcome}
        attempt["stage_reached"] = stage
        if not deidentify:
            attempt["note"] = note
        attempts[rupture_id].append(rows.mark(attempt, deletion))
        attempt_count += 1
    records = []
    for row in rows.of(RuptureEvent).order_by().values_list(
        "id",
        "key",
        "session__key",
        "kind",
        "actor",
        "markers",
        "intensity",
        "source",
        "internal_signals",
        "minute",
        "noticed",
        "plan",
        "repair_status",
        "risk",
        "declined_relational_talk",
        "deletion",
    ):
        (
            rupture_id,
            key,
            session,
            kind,
            actor,
            markers,
            intensity,
            source,
            signals,
            minute,
            noticed,
            plan,
            repair_status,
            risk,
            declined,
            deletion,
        ) = row
        record = {
            "id": keys("rupture", key),
            "session": keys("session", session),
            "kind": kind,
            "actor": actor,
            "markers": markers,
            "intensity": intensity,
            "source": source,
            "internal_signals": signals,
            "minute": minute,
        }
        if not deidentify:
            record["note"] = noticed
            record["plan"] = plan
        record["repair_status"] = repair_status
        record["risk"] = risk
        record["declined_relational_talk"] = declined
        record["attempts"] = attempts.pop(rupture_id, [])
        records.append((session_order[session], rows.mark(record, deletion)))
    records.sort(key=lambda pair: (pair[0], pair[1]["id"]))
    return [record for _, record in records], attempt_count


def _deletions(rows):
    """The deletions that hide exported rows, in key order."""
    found = Deletion.objects.filter(pk__in=sorted(rows.used)).values_list(
        "key", "at", "by__username", "reason", "record_type", "record_key"
    )
    records = []
    for key, at, by, reason, record_type, record_key in found:
        records.append({
            "id": key, "at": _timestamp(at), "by": by, "reason": reason,
            "record": {"type": DELETED_RECORD_TYPES[record_type], "id": record_key},
        })
    return _sort(records, lambda r: r["id"])


def _checks(keys, without_text, session_order, rows):
    """The alliance checks in their sessions' order, therapist before client; answers by item
    slug. A backup carries the deleted ones too, each naming its deletion, like every record."""
    free_text = {
        pk: {item["slug"] for item in items if item["type"] == "text"}
        for pk, items in Instrument.objects.values_list("pk", "items")
    }
    records = []
    for key, session, respondent, instrument_id, slug, version, answers, submitted_at, declined, deletion in (
        rows.of(AllianceCheck)
        .values_list("key", "session__key", "respondent", "instrument_id", "instrument__slug",
                     "instrument__version", "answers", "submitted_at", "declined", "deletion")
    ):
        if session not in session_order:
            continue  # a session of a deleted client: not in the export, nor its checks
        if without_text:
            answers = {k: v for k, v in answers.items() if k not in free_text[instrument_id]}
        record = {
            "id": keys("check", key),
            "session": keys("session", session),
            "respondent": respondent,
            "instrument": slug,
            "version": version,
            "answers": dict(sorted(answers.items())),
            "submitted_at": _timestamp(submitted_at),
            "declined": declined,
        }
        records.append((session_order[session], respondent != "therapist", rows.mark(record, deletion)))
    records.sort(key=lambda r: (r[0], r[1], r[2]["id"]))
    return [record for *_, record in records]
