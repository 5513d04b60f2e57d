"""Import a caseload file: check all of it, then apply all of it in one transaction, or nothing.

Records are matched on their keys (username, client code, session and rupture id), so a
second import of the same file writes nothing. A repair attempt has no key in the file:
it is matched by its position among its rupture's attempts, oldest first, so the same
file always pairs the same rows. An import adds and updates; it never deletes, so
records and repair attempts that the file does not list stay as they are.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Role, SupervisionLink, User
from accounts.services import set_role
from audit.log import record
from audit.models import Action, Deletion
from checks.models import AllianceCheck, Instrument
from exchange.bulk import BATCH, batched, copy_rows, ids_by_key, rows_by_key, update_rows
from exchange.validation import (
    MISSING,
    Caseload,
    CheckFacts,
    ClientFacts,
    Existing,
    Problem,
    RuptureFacts,
    SessionFacts,
    capped,
    check,
    check_header,
    parse,
    skeleton,
    wanted_keys,
)
from ruptures.models import RepairAttempt, RuptureEvent
from sessions.models import Client, ClientStatus, TherapySession

SECTIONS = ("users", "supervision", "clients", "sessions", "ruptures", "attempts", "checks", "deletions")


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def as_dict(self):
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged}


@dataclass
class ImportResult:
    problems: list
    dry_run: bool
    applied: bool = False
    counts: dict = field(default_factory=dict)  # section -> Tally
    role_changes: list = field(default_factory=list)  # (username, role before, role after)

    @property
    def ok(self):
        return not self.problems

    def counts_dict(self):
        return {name: tally.as_dict() for name, tally in self.counts.items()}

    @property
    def changes(self):
        return sum(t.created + t.updated for t in self.counts.values())


class ImportRefused(Exception):
    def __init__(self, problems):
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


def run_import(data: bytes, *, dry_run=False, request=None, via="command", allow_role_changes=False) -> ImportResult:
    """Check `data` and, unless `dry_run`, apply it; record the attempt in the audit log either way.

    A dry run writes nothing but the audit event: it says what applying would do.
    """
    doc, problems = parse(data)
    problems = problems or check_header(doc)
    result = None
    if not problems:
        try:
            with transaction.atomic():
                result = _import(doc, dry_run=dry_run, allow_role_changes=allow_role_changes)
                if not dry_run:
                    # In the same transaction: an applied import always has its audit event.
                    _record(request, data, result, via)
        except ImportRefused as refused:
            problems = refused.problems
    if result is None:
        result = ImportResult(problems=problems, dry_run=dry_run)
    if not result.applied:
        _record(request, data, result, via)
    return result


def _record(request, data, result, via):
    outcome = "applied" if result.applied else "refused" if result.problems else "checked"
    record(
        request,
        Action.IMPORT,
        "caseload",
        detail={
            "via": via,
            "dry_run": result.dry_run,
            "outcome": outcome,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "problems": len(result.problems),
            "counts": result.counts_dict(),
            "role_changes": len(result.role_changes),
        },
    )


def _import(doc, *, dry_run, allow_role_changes) -> ImportResult:
    db = _Database.load(wanted_keys(doc))
    problems, caseload = check(doc, db.existing(), allow_role_changes=allow_role_changes)
    doc.clear()  # the clean rows replace it; the two need not share the memory
    if problems:
        raise ImportRefused(problems)
    result = ImportResult(
        problems=[], dry_run=dry_run, counts={name: Tally() for name in SECTIONS},
        role_changes=caseload.role_changes,
    )
    _Apply(caseload, db, result.counts, write=not dry_run).run()
    result.applied = not dry_run
    return result


class _Database:
    """The rows a file's keys already have, read once, a batch of keys per query."""

    def __init__(self):
        self.users = {}  # username -> (id, display_name, email, role)
        # code -> (id, name, therapist_id, status, started_on, ending, discharged_at, therapist username, deletion)
        self.clients = {}
        self.sessions = {}  # key -> (id, client code, therapist_id, starts_at, status, therapist, deletion)
        self.ruptures = {}  # key -> (session key, client code, deletion key)
        self.deletions = {}  # key -> (id, at, by id, reason)
        self.skeletons = {}  # every username's look-alike skeleton -> username
        self.instruments = {}  # (slug, version, respondent) -> Instrument
        self.check_slots = {}  # (session key, respondent) -> live check key
        self.checks = {}  # the file's check keys in the database -> (client code, deletion key)

    @classmethod
    def load(cls, keys):
        db = cls()
        db.users = rows_by_key(
            User.objects.all(), "username", keys["usernames"], "id", "display_name", "email", "role"
        )
        # Every username, to refuse a new one that looks like any of them: a clinic has
        # hundreds of people, so this stays small whatever the file holds.
        for username in User.objects.values_list("username", flat=True).iterator():
            db.skeletons.setdefault(skeleton(username), username)
        db.clients = rows_by_key(
            # Deleted records keep their keys: matching them keeps a re-import from
            # colliding with a record the app has hidden.
            Client.all_objects.all(),
            "code",
            keys["client_codes"],
            "id",
            "name",
            "therapist_id",
            "status",
            "started_on",
            "ending",
            "discharged_at",
            "therapist__username",
            "deletion__key",
        )
        db.sessions = rows_by_key(
            TherapySession.all_objects.all(),
            "key",
            keys["session_keys"],
            "id",
            "client__code",
            "therapist_id",
            "starts_at",
            "status",
            "therapist__username",
            "deletion__key",
        )
        db.ruptures = rows_by_key(
            RuptureEvent.all_objects.all(), "key", keys["rupture_keys"], "session__key", "session__client__code",
            "deletion__key",
        )
        db.deletions = rows_by_key(
            Deletion.objects.all(), "key", keys["deletion_keys"], "id", "at", "by_id", "reason"
        )
        # A handful of rows in any clinic: read whole.
        db.instruments = {(i.slug, i.version, i.respondent): i for i in Instrument.objects.all()}
        for session_key, respondent, key in _in_chunks(
            AllianceCheck.objects.all(), "session__key", db.sessions, "respondent", "key"
        ):
            db.check_slots[(session_key, respondent)] = key
        db.checks = {key: rest for key, *rest in _in_chunks(
            AllianceCheck.all_objects.all(), "key", keys["check_keys"], "session__client__code", "deletion__key"
        )}
        return db

    def existing(self):
        return Existing(
            roles={name: row[3] for name, row in self.users.items()},
            clients={code: ClientFacts(row[7], row[8]) for code, row in self.clients.items()},
            sessions={
                key: SessionFacts(row[1], row[3], row[5], row[6]) for key, row in self.sessions.items()
            },
            ruptures={key: RuptureFacts(*row) for key, row in self.ruptures.items()},
            deletions=set(self.deletions),
            skeletons=self.skeletons,
            instruments={ident: i.items for ident, i in self.instruments.items()},
            check_slots=self.check_slots,
            checks={key: CheckFacts(*row) for key, row in self.checks.items()},
        )


def _in_chunks(queryset, field, keys, *columns):
    for chunk in batched(sorted(keys)):
        yield from queryset.filter(**{f"{field}__in": chunk}).values_list(field, *columns)


class _Apply:
    """Works out what each record changes and, when `write` is set, writes it in bulk."""

    def __init__(self, caseload: Caseload, db: _Database, counts, *, write):
        self.caseload = caseload
        self.db = db
        self.counts = counts
        self.write = write
        self.now = timezone.now()
        self.user_ids = {name: row[0] for name, row in db.users.items()}
        self.client_ids = {code: row[0] for code, row in db.clients.items()}
        self.session_ids = {key: row[0] for key, row in db.sessions.items()}
        self.session_therapists = {key: row[2] for key, row in db.sessions.items()}
        # New rows the file says are deleted: model -> [(key or (rupture key, position), deletion key)].
        self.to_hide = {Client: [], TherapySession: [], RuptureEvent: [], RepairAttempt: [], AllianceCheck: []}
        self.check_ids = {}  # new checks' keys -> ids, for those the file says are deleted
        # Existing sessions moved in time and ruptures moved to another session: the
        # repair attempts that hang off them are checked once everything is written.
        self.moved_sessions = []
        self.moved_ruptures = []

    def run(self):
        self.users()
        self.supervision()
        self.clients()
        self.sessions()
        ruptures = self.ruptures()
        self.attempts(ruptures)
        self.checks()
        self.deletions(ruptures)
        if self.write:
            self.check_attempt_sessions()

    # --- People --------------------------------------------------------------------------

    def users(self):
        tally, creates, updates, new_roles = self.counts["users"], [], [], []
        for row in self.caseload.users:
            before = self.db.users.get(row.username)
            if before is None:
                user = User(
                    username=row.username,
                    role=row.role,
                    is_staff=row.role == Role.ADMIN,
                    display_name=_given(row.name, ""),
                    email=_given(row.email, ""),
                )
                # No password until an admin sets one or sends a reset link.
                user.set_unusable_password()
                creates.append(user)
                continue
            user_id, name, email, role = before
            after = (_given(row.name, name), _given(row.email, email))
            if after != (name, email):
                updates.append((user_id, *after))
            if row.role != role:
                new_roles.append((user_id, row.role))
            if after != (name, email) or row.role != role:
                tally.updated += 1
            else:
                tally.unchanged += 1
        tally.created = len(creates)
        if not self.write:
            return
        User.objects.bulk_create(creates, batch_size=BATCH)
        update_rows(User, ["display_name", "email"], updates)
        changed = User.objects.in_bulk([user_id for user_id, _ in new_roles])
        # One person at a time through set_role, which keeps the role's group in step
        # with the field; a clinic has hundreds of people, not hundreds of thousands.
        for user in creates:
            set_role(user=user, role=user.role)
            self.user_ids[user.username] = user.pk
        for user_id, role in new_roles:
            set_role(user=changed[user_id], role=role)

    def supervision(self):
        tally = self.counts["supervision"]
        rows = [row for row in self.caseload.users if row.supervisor is not MISSING]
        therapist_ids = [
            self.user_ids[row.username] for row in rows if row.username in self.user_ids
        ]
        open_links = {}
        for chunk in batched(therapist_ids):
            for link_id, therapist_id, supervisor_id, starts_on in SupervisionLink.objects.filter(
                ends_on__isnull=True, therapist_id__in=chunk
            ).values_list("id", "therapist_id", "supervisor_id", "starts_on"):
                open_links[therapist_id] = (link_id, supervisor_id, starts_on)
        today = timezone.localdate()
        ended, created = [], []
        for row in rows:
            therapist_id = self.user_ids.get(row.username)
            wanted = self.user_ids.get(row.supervisor) if row.supervisor else None
            link = open_links.get(therapist_id)
            if link is not None and row.supervisor and link[1] == wanted:
                tally.unchanged += 1
                continue
            if link is None and not row.supervisor:
                continue
            if link is not None:
                # The old supervisor's access ends yesterday, unless the link began today.
                ended.append((link[0], max(link[2], today - timedelta(days=1))))
                tally.updated += 1
            if row.supervisor:
                created.append((row.username, row.supervisor))
                tally.created += 1
        if not self.write:
            return
        update_rows(SupervisionLink, ["ends_on"], ended)
        SupervisionLink.objects.bulk_create(
            [
                SupervisionLink(
                    therapist_id=self.user_ids[therapist],
                    supervisor_id=self.user_ids[supervisor],
                    starts_on=today,
                )
                for therapist, supervisor in created
            ]
        )

    # --- Clients and sessions --------------------------------------------------------------

    def clients(self):
        tally, creates, updates = self.counts["clients"], [], []
        for row in self.caseload.clients:
            before = self.db.clients.get(row.code)
            if before is None:
                creates.append(row)
                if row.deleted:
                    self.to_hide[Client].append((row.code, row.deleted))
                continue
            client_id, name, therapist_id, status, started_on, ending, discharged_at, _, _ = before
            if row.status == ClientStatus.DISCHARGED:
                ending = _given(row.ending, ending)
            else:
                # How a therapy ended belongs to a therapy that did (a CHECK says so too).
                ending, discharged_at = "", None
            after = (
                _given(row.name, name),
                self.user_ids.get(row.therapist),
                row.status,
                row.started_on,
                ending,
                discharged_at,
            )
            if after != before[1:7]:
                updates.append((client_id, *after))
                tally.updated += 1
            else:
                tally.unchanged += 1
        tally.created = len(creates)
        if not self.write:
            return
        update_rows(Client, ["name", "therapist", "status", "started_on", "ending", "discharged_at"], updates)
        for chunk in batched(creates):
            made = Client.objects.bulk_create(
                [
                    Client(
                        code=row.code,
                        name=_given(row.name, ""),
                        therapist_id=self.user_ids[row.therapist],
                        status=row.status,
                        started_on=row.started_on,
                        ending=_given(row.ending, ""),
                    )
                    for row in chunk
                ]
            )
            self.client_ids.update((client.code, client.pk) for client in made)

    def sessions(self):
        tally, creates, updates = self.counts["sessions"], [], []
        for row in self.caseload.sessions:
            before = self.db.sessions.get(row.key)
            if before is None:
                creates.append(row)
                if row.deleted:
                    self.to_hide[TherapySession].append((row.key, row.deleted))
                continue
            session_id, _client, therapist_id, starts_at, status, _, _ = before
            after = (self.user_ids.get(row.therapist), row.starts_at, row.status)
            if after != (therapist_id, starts_at, status):
                updates.append((session_id, *after))
                self.session_therapists[row.key] = after[0]
                if row.starts_at != starts_at:
                    self.moved_sessions.append(session_id)
                tally.updated += 1
            else:
                tally.unchanged += 1
        tally.created = len(creates)
        if not self.write:
            return
        update_rows(TherapySession, ["therapist", "starts_at", "status"], updates)
        copy_rows(
            TherapySession,
            ["key", "client_id", "therapist_id", "starts_at", "status"],
            (
                (
                    row.key,
                    self.client_ids[row.client],
                    self.user_ids[row.therapist],
                    row.starts_at,
                    row.status,
                )
                for row in creates
            ),
        )
        self.session_ids.update(ids_by_key(TherapySession, "key", [row.key for row in creates]))
        for row in creates:
            self.session_therapists[row.key] = self.user_ids[row.therapist]

    # --- Ruptures and repair attempts ----------------------------------------------------------

    RUPTURE_FIELDS = (
        "session",
        "kind",
        "actor",
        "markers",
        "intensity",
        "minute",
        "source",
        "internal_signals",
        "noticed",
        "plan",
        "repair_status",
        "risk",
        "declined_relational_talk",
    )

    def ruptures(self):
        """Create and update the file's ruptures; their keys and ids, for the attempts."""
        tally, creates, updates = self.counts["ruptures"], [], []
        # Locked until the import commits: an edit begun in the app meanwhile then
        # fails its version check instead of silently undoing the import.
        ruptures = (
            RuptureEvent.all_objects.select_for_update() if self.write else RuptureEvent.all_objects.all()
        )
        before_rows = rows_by_key(
            ruptures,
            "key",
            [r.key for r in self.caseload.ruptures],
            "id",
            "version",
            "risk_recorded_at",
            *(f"{name}_id" if name == "session" else name for name in self.RUPTURE_FIELDS),
        )
        ids = {key: row[0] for key, row in before_rows.items()}
        for row in self.caseload.ruptures:
            before = before_rows.get(row.key)
            if before is None:
                creates.append(row)
                if row.deleted:
                    self.to_hide[RuptureEvent].append((row.key, row.deleted))
                continue
            rupture_id, version, risk_recorded_at, *old = before
            new = [
                self.session_ids.get(row.session),
                row.kind,
                row.actor,
                row.markers,
                row.intensity,
                _given(row.minute, old[5]),
                row.source,
                _given(row.internal_signals, old[7]),
                _given(row.note, old[8]),
                _given(row.plan, old[9]),
                row.repair_status,
                _given(row.risk, old[11]),
                _given(row.declined_relational_talk, old[12]),
            ]
            if new == old:
                tally.unchanged += 1
                continue
            if new[0] != old[0]:
                self.moved_ruptures.append(rupture_id)
            # An update, not a replacement: created_at/by stay and the version moves on,
            # so an edit open in the app is told about it. A risk the file changes is
            # history, not news recorded in the app (RuptureEventQuerySet.risk_news).
            if new[11] != old[11]:
                risk_recorded_at = None
            updates.append(
                (rupture_id, *new, risk_recorded_at, version + 1, self.now, self.session_therapists.get(row.session))
            )
            tally.updated += 1
        tally.created = len(creates)
        if not self.write:
            return ids
        update_rows(
            RuptureEvent, [*self.RUPTURE_FIELDS, "risk_recorded_at", "version", "updated_at", "updated_by"], updates
        )
        copy_rows(RuptureEvent, self.NEW_RUPTURE_COLUMNS, map(self._new_rupture, creates))
        ids.update(ids_by_key(RuptureEvent, "key", [row.key for row in creates]))
        return ids

    NEW_RUPTURE_COLUMNS = (
        "key",
        "session_id",
        "kind",
        "actor",
        "markers",
        "intensity",
        "minute",
        "source",
        "internal_signals",
        "noticed",
        "plan",
        "repair_status",
        "risk",
        "declined_relational_talk",
        "created_by_id",
        "updated_by_id",
    )

    def _new_rupture(self, row):
        therapist_id = self.session_therapists[row.session]
        return (
            row.key,
            self.session_ids[row.session],
            row.kind,
            row.actor,
            row.markers,
            row.intensity,
            _given(row.minute, None),
            row.source,
            _given(row.internal_signals, []),
            _given(row.note, ""),
            _given(row.plan, ""),
            row.repair_status,
            _given(row.risk, "none"),
            _given(row.declined_relational_talk, False),
            therapist_id,
            therapist_id,
        )

    def attempts(self, rupture_ids):
        tally, creates, updates = self.counts["attempts"], [], []
        existing = {}
        known = [rupture_ids[r.key] for r in self.caseload.ruptures if r.key in rupture_ids]
        for chunk in batched(known):
            for row in (
                RepairAttempt.all_objects.filter(rupture_id__in=chunk)
                .order_by("rupture_id", "pk")
                .values_list(
                    "rupture_id", "id", "session_id", "strategy", "outcome", "note", "stage_reached", "deletion__key"
                )
            ):
                existing.setdefault(row[0], []).append(row[1:])
        problems = []
        for rupture in self.caseload.ruptures:
            if rupture.attempts is MISSING:
                continue
            rupture_id = rupture_ids.get(rupture.key)
            olds = existing.get(rupture_id, []) if rupture_id is not None else []
            for position, attempt in enumerate(rupture.attempts):
                if position >= len(olds):
                    creates.append((rupture.key, attempt))
                    if attempt.deleted:
                        self.to_hide[RepairAttempt].append(((rupture.key, position), attempt.deleted))
                    continue
                attempt_id, *old, was_deleted = olds[position]
                if was_deleted != attempt.deleted:
                    problems.append(Problem(
                        f"ruptures[{self.rupture_at(rupture.key)}].attempts[{position}].deleted",
                        f"the database has this repair attempt {'deleted' if was_deleted else 'not deleted'}; "
                        "an import neither deletes nor restores records",
                    ))
                    continue
                new = [
                    self.session_ids.get(attempt.session),
                    attempt.strategy,
                    attempt.outcome,
                    _given(attempt.note, old[3]),
                    _given(attempt.stage_reached, old[4]),
                ]
                if new != old:
                    updates.append((attempt_id, *new))
                    tally.updated += 1
                else:
                    tally.unchanged += 1
        if problems:
            raise ImportRefused(capped(problems))
        tally.created = len(creates)
        if not self.write:
            return
        # The trigger of ruptures/migrations/0002 checks each row again; the checks
        # already made guarantee it agrees.
        update_rows(RepairAttempt, ["session", "strategy", "outcome", "note", "stage_reached"], updates)
        # In file order, so the ids (and so the export's order) follow the file.
        copy_rows(
            RepairAttempt,
            ["rupture_id", "session_id", "strategy", "outcome", "note", "stage_reached", "created_by_id"],
            (
                (
                    rupture_ids[key],
                    self.session_ids[attempt.session],
                    attempt.strategy,
                    attempt.outcome,
                    _given(attempt.note, ""),
                    _given(attempt.stage_reached, ""),
                    self.session_therapists[attempt.session],
                )
                for key, attempt in creates
            ),
        )

    def rupture_at(self, key):
        if not hasattr(self, "_rupture_at"):
            self._rupture_at = {row.key: i for i, row in enumerate(self.caseload.ruptures)}
        return self._rupture_at[key]

    # --- Deleted records ------------------------------------------------------------------------

    ROOTS = {"client": Client, "session": TherapySession, "rupture": RuptureEvent}

    def deletions(self, rupture_ids):
        """Make the file's deletions the database lacks, then hide the new rows they hide."""
        tally = self.counts["deletions"]
        new = [row for row in self.caseload.deletions if row.key not in self.db.deletions]
        tally.created, tally.unchanged = len(new), len(self.caseload.deletions) - len(new)
        if not self.write or not (new or any(self.to_hide.values())):
            return
        made = []
        for row in new:
            model = self.ROOTS[row.record_type]
            key_field = model.key_field
            record_id, client_id = model.all_objects.filter(**{key_field: row.record_key}).values_list(
                "pk", f"{model.client_path}__id" if model.client_path else "pk"
            ).get()
            made.append(Deletion(
                key=row.key, at=row.at, by_id=self.user_ids.get(row.by) if row.by else None, reason=row.reason,
                record_type=model._meta.label_lower, record_id=record_id, record_key=row.record_key,
                client_id=client_id,
            ))
        Deletion.objects.bulk_create(made, batch_size=BATCH)
        deletions = {key: row[:4] for key, row in self.db.deletions.items()}
        deletions.update((d.key, (d.pk, d.at, d.by_id, d.reason)) for d in made)
        hidden = {}
        for model, marks in self.to_hide.items():
            ids = self._ids(model, [mark for mark, _ in marks], rupture_ids)
            rows = []
            for mark, deletion_key in marks:
                deletion_id, at, by_id, reason = deletions[deletion_key]
                rows.append((ids[mark], at, by_id, reason, deletion_id))
                counts = hidden.setdefault(deletion_id, {})
                counts[model._meta.label_lower] = counts.get(model._meta.label_lower, 0) + 1
            update_rows(model, ["deleted_at", "deleted_by", "deletion_reason", "deletion"], rows)
        for deletion in made:
            deletion.hidden = hidden.get(deletion.pk, {})
        Deletion.objects.bulk_update(made, ["hidden"], batch_size=BATCH)

    def _ids(self, model, marks, rupture_ids):
        if model is Client:
            return self.client_ids
        if model is TherapySession:
            return self.session_ids
        if model is RuptureEvent:
            return rupture_ids
        if model is AllianceCheck:
            return self.check_ids
        # Repair attempts have no key: their place among their rupture's attempts.
        wanted = {rupture_ids[key] for key, _ in marks}
        places, ids = {}, {}
        by_id = {v: k for k, v in rupture_ids.items() if v in wanted}
        for chunk in batched(sorted(wanted)):
            for rupture_id, attempt_id in (
                RepairAttempt.all_objects.filter(rupture_id__in=chunk).order_by("rupture_id", "pk")
                .values_list("rupture_id", "id")
            ):
                position = places.get(rupture_id, 0)
                places[rupture_id] = position + 1
                ids[(by_id[rupture_id], position)] = attempt_id
        return ids

    # --- Alliance checks (format version 2) -------------------------------------------------

    def checks(self):
        """Create and update the file's checks, matched on their keys; meanings filled as the app fills them."""
        tally, creates, updates = self.counts["checks"], [], []
        checks = AllianceCheck.all_objects.select_for_update() if self.write else AllianceCheck.all_objects.all()
        before = {
            c.key: c for chunk in batched(sorted(r.key for r in self.caseload.checks))
            for c in checks.filter(key__in=chunk).select_related("instrument")
        }
        for row in self.caseload.checks:
            instrument = self.db.instruments[(row.instrument, row.version, row.respondent)]
            old = before.get(row.key)
            check = old or AllianceCheck(key=row.key, respondent=row.respondent)
            if self.caseload.free_text_omitted and old is not None and old.instrument_id == instrument.pk:
                # Left out of the file, not cleared: the client's words stay as they are.
                kept = {k: v for k, v in old.answers.items() if k in instrument.free_text_items()}
                row.answers = {**kept, **row.answers}
            values = (self.session_ids.get(row.session), row.respondent, instrument.pk, row.answers,
                      row.submitted_at, row.declined)
            if old is not None and values == (old.session_id, old.respondent, old.instrument_id, old.answers,
                                              old.submitted_at, old.declined):
                tally.unchanged += 1
                continue
            check.respondent, check.instrument = row.respondent, instrument
            check.submitted_at, check.declined = row.submitted_at, row.declined
            check.set_answers(row.answers)
            (updates if old else creates).append((row.session, check))
            if old is None and row.deleted:
                self.to_hide[AllianceCheck].append((row.key, row.deleted))
        tally.created, tally.updated = len(creates), len(updates)
        if not self.write:
            return
        for session_key, check in creates + updates:
            check.session_id = self.session_ids[session_key]
        AllianceCheck.objects.bulk_create([c for _, c in creates], batch_size=BATCH)
        self.check_ids = {check.key: check.pk for _, check in creates}
        for _, check in updates:
            check.save()

    def check_attempt_sessions(self):
        """Refuse the import if it moved a session or rupture away from one of its repair attempts.

        The file's own attempts were checked before writing. Attempts it does not list
        (of other ruptures, or beyond a rupture's listed ones) are checked here, in SQL,
        because the database trigger only looks at an attempt when the attempt is written.
        """
        if not self.moved_sessions and not self.moved_ruptures:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT r.key, rs.key, s.key
                  FROM ruptures_repairattempt a
                  JOIN ruptures_ruptureevent r ON r.id = a.rupture_id
                  JOIN therapy_sessions_therapysession rs ON rs.id = r.session_id
                  JOIN therapy_sessions_therapysession s ON s.id = a.session_id
                 WHERE (a.session_id = ANY(%s) OR r.session_id = ANY(%s) OR r.id = ANY(%s))
                   AND (s.client_id <> rs.client_id OR s.starts_at < rs.starts_at)
                 ORDER BY r.key, a.id
                """,
                [self.moved_sessions, self.moved_sessions, self.moved_ruptures],
            )
            broken = cursor.fetchall()
        if broken:
            session_at = {row.key: i for i, row in enumerate(self.caseload.sessions)}
            rupture_at = {row.key: i for i, row in enumerate(self.caseload.ruptures)}
            problems = []
            for rupture, rupture_session, attempt_session in broken:
                if rupture in rupture_at:
                    path = f"ruptures[{rupture_at[rupture]}].session"
                else:
                    moved = attempt_session if attempt_session in session_at else rupture_session
                    path = f"sessions[{session_at.get(moved, 0)}].starts_at"
                problems.append(
                    Problem(
                        path,
                        (
                            f'would leave a repair attempt of rupture "{rupture}" in session '
                            f'"{attempt_session}", which is then not the rupture\'s session '
                            f'"{rupture_session}" or a later one of the same client'
                        ),
                    )
                )
            raise ImportRefused(capped(problems))


def _given(value, default):
    """The file's value, or `default` when the file leaves the field out."""
    return default if value is MISSING else value
