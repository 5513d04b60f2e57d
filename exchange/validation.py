"""The caseload exchange format (docs/caseload-format.md), read and checked.

No database here: the importer asks the database which of the keys a file mentions
already exist (`wanted_keys`, then an `Existing`), and `check` does the rest. Every
record is checked, every problem is collected with its JSON path, and a clean
`Caseload` comes back only when there is none, so the importer never hands the
database a value that a CHECK constraint or a trigger would refuse.

Optional fields (a user's `name`, `email` and `supervisor`; a client's `name`; a
rupture's `note`, `plan`, `minute`, `internal_signals` and `attempts`; an attempt's
`note`) may be left out: a new record then gets the empty value, an existing one keeps
what it has. An explicit `""` or `null` clears it.
"""

import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from accounts.models import Role
from audit.records import FREE_TEXT_MAX
from ruptures import vocabulary as v
from sessions.models import ClientStatus, SessionStatus

FORMAT = "caseload"
# The version this app writes; it reads every one of READS (version 1 gets the defaults
# of what version 2 added).
VERSION = 2
READS = (1, 2)
# The file-level marker of a de-identified (pseudonymised) export, which import refuses.
PSEUDONYMISED = "pseudonymised"

# Limits of the columns the records land in (accounts.User, sessions.models, ruptures.models).
USERNAME_RE = re.compile(r"[\w.@+-]{1,150}")
# A new person's username: plain ASCII, so that no look-alike of another can be made.
NEW_USERNAME_RE = re.compile(r"[a-z0-9._-]{1,150}")
# A report lists this many problems, then says how many more there are: a broken file
# of millions of records must not fill memory or the database with its report.
MAX_PROBLEMS = 1000
REASON_MAX = 500
CASE_CODE_RE = re.compile(v.CASE_CODE_PATTERN)
KEY_MAX = 64
DISPLAY_NAME_MAX = 150
CLIENT_NAME_MAX = 200
TEXT_MAX = FREE_TEXT_MAX  # a rupture's note and plan, an attempt's note
EMAIL_MAX = 254
MINUTE_MAX = v.SESSION_MAX_MINUTES
# A typo such as 0226 for 2026 is refused rather than stored; years far outside any
# clinic's records would not convert back to Python datetimes on export either.
YEARS = (1900, 2199)

ROLES = tuple(Role.values)
CLIENT_STATUSES = tuple(ClientStatus.values)
SESSION_STATUSES = tuple(SessionStatus.values)
KINDS = tuple(slug for slug, _ in v.KINDS)
ACTORS = tuple(slug for slug, _ in v.ACTORS)
MARKERS = frozenset(slug for slug, _ in v.MARKERS)
SIGNALS = frozenset(slug for slug, _ in v.INTERNAL_SIGNALS)
SOURCES = tuple(slug for slug, _ in v.SOURCES)
REPAIR_STATUSES = tuple(slug for slug, _ in v.REPAIR_STATUSES)
STRATEGIES = frozenset(slug for slug, *_ in v.STRATEGY_TABLE)
OUTCOMES = tuple(s for s in REPAIR_STATUSES if s != "unaddressed")
RISKS = tuple(slug for slug, _ in v.RISKS)
STAGES = tuple(slug for slug, _ in v.STAGES)
ENDINGS = tuple(slug for slug, _ in v.ENDINGS)

SECTIONS = ("users", "clients", "sessions", "ruptures", "deletions")
# "free_text": "omitted" marks an export without free text (exchange/exporter.py).
TOP_FIELDS = frozenset({"format", "version", PSEUDONYMISED, "free_text", *SECTIONS})
# Version 2's additions: the post-session alliance checks (checks app).
SECTIONS_V2 = (*SECTIONS, "checks")
TOP_FIELDS_V2 = frozenset({*TOP_FIELDS, "checks"})
CHECK_REQUIRED = ("answers", "declined", "id", "instrument", "respondent", "session", "submitted_at", "version")
CHECK_FIELDS = frozenset({*CHECK_REQUIRED, "deleted"})
RESPONDENTS = ("therapist", "client")
USER_REQUIRED, USER_FIELDS = (
    ("username", "role"),
    frozenset({"username", "name", "email", "role", "supervisor"}),
)
CLIENT_REQUIRED = ("code", "therapist", "status", "started_on")
CLIENT_FIELDS = frozenset({*CLIENT_REQUIRED, "name", "deleted"})
SESSION_REQUIRED = ("id", "client", "therapist", "starts_at", "status")
SESSION_FIELDS = frozenset({*SESSION_REQUIRED, "deleted"})
RUPTURE_REQUIRED = (
    "id",
    "session",
    "kind",
    "actor",
    "markers",
    "intensity",
    "source",
    "repair_status",
)
RUPTURE_FIELDS = frozenset(
    {*RUPTURE_REQUIRED, "internal_signals", "minute", "note", "plan", "attempts", "deleted"}
)
ATTEMPT_REQUIRED = ("session", "strategy", "outcome")
ATTEMPT_FIELDS = frozenset({*ATTEMPT_REQUIRED, "note", "deleted"})
DELETION_REQUIRED = ("id", "at", "record")
# `reason` is left out by an export without free text: a new deletion then says so.
DELETION_FIELDS = frozenset({*DELETION_REQUIRED, "by", "reason"})
REASON_NOT_IN_FILE = "(the reason was not in the imported file)"
# What the app deletes on its own (attempts and checks go with their rupture or session).
DELETED_RECORD_TYPES = ("client", "session", "rupture")
# Version 2's optional additions (clinical depth): how a therapy ended, a rupture's risk
# and whether the client declined relational talk, the stage an attempt reached.
V2_FIELDS = {
    "clients": frozenset({"ending"}),
    "ruptures": frozenset({"risk", "declined_relational_talk"}),
    "attempts": frozenset({"stage_reached"}),
}

_email = EmailValidator()


class _Missing:
    """An optional field the file leaves out: keep what the database has."""

    def __repr__(self):
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    message: str

    def __str__(self):
        return f"{self.path}: {self.message}"


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """What the checks need to know of a session: whose it is and when."""

    client: str
    starts_at: datetime
    therapist: str = ""
    deleted: str | None = None  # the key of the deletion hiding it


@dataclass(frozen=True, slots=True)
class ClientFacts:
    therapist: str
    deleted: str | None = None


@dataclass(frozen=True, slots=True)
class RuptureFacts:
    session: str
    client: str
    deleted: str | None = None


@dataclass
class Existing:
    """What the database holds of the keys a file mentions."""

    usernames: set = field(default_factory=set)
    roles: dict = field(default_factory=dict)  # username -> role
    client_codes: set = field(default_factory=set)
    clients: dict = field(default_factory=dict)  # code -> ClientFacts
    sessions: dict = field(default_factory=dict)  # key -> SessionFacts
    ruptures: dict = field(default_factory=dict)  # key -> RuptureFacts
    deletions: set = field(default_factory=set)  # deletion keys
    # Every username's look-alike skeleton -> the username (all people: a clinic's hundreds).
    skeletons: dict = field(default_factory=dict)

    def __post_init__(self):
        self.usernames |= set(self.roles)
        self.client_codes |= set(self.clients)
    instruments: dict = field(default_factory=dict)  # (slug, version, respondent) -> items
    # Live checks of the file's sessions: (session key, respondent) -> check key.
    check_slots: dict = field(default_factory=dict)
    # The file's checks already in the database, deleted ones too: key -> CheckFacts.
    checks: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CheckFacts:
    """An alliance check already in the database: whose it is, and the deletion hiding it."""

    client: str
    deleted: str | None = None


@dataclass(slots=True)
class UserRow:
    username: str
    role: str
    name: Any = MISSING
    email: Any = MISSING
    supervisor: Any = MISSING  # a username, None (no supervisor) or MISSING


@dataclass(slots=True)
class ClientRow:
    code: str
    therapist: str
    status: str
    started_on: date
    name: Any = MISSING
    ending: Any = MISSING
    deleted: str | None = None


@dataclass(slots=True)
class SessionRow:
    key: str
    client: str
    therapist: str
    starts_at: datetime
    status: str
    deleted: str | None = None


@dataclass(slots=True)
class AttemptRow:
    session: str
    strategy: str
    outcome: str
    note: Any = MISSING
    stage_reached: Any = MISSING
    deleted: str | None = None


@dataclass(slots=True)
class RuptureRow:
    key: str
    session: str
    kind: str
    actor: str
    markers: list
    intensity: int
    source: str
    repair_status: str
    internal_signals: Any = MISSING
    minute: Any = MISSING
    note: Any = MISSING
    plan: Any = MISSING
    attempts: Any = MISSING  # a list of AttemptRow, or MISSING
    risk: Any = MISSING
    declined_relational_talk: Any = MISSING
    deleted: str | None = None


@dataclass(slots=True)
class DeletionRow:
    key: str
    at: datetime
    by: str | None
    reason: str
    record_type: str
    record_key: str


@dataclass(slots=True)
class CheckRow:
    key: str
    session: str
    respondent: str
    instrument: str
    version: int
    answers: dict
    submitted_at: datetime
    declined: bool
    deleted: str | None = None


@dataclass
class Caseload:
    """A checked file, records in file order."""

    users: list
    clients: list
    sessions: list
    ruptures: list
    deletions: list = field(default_factory=list)
    role_changes: list = field(default_factory=list)  # (username, role before, role after)
    checks: list = field(default_factory=list)
    # An export without free text: its checks' free-text answers were left out, not cleared.
    free_text_omitted: bool = False

    def counts(self):
        return {
            "users": len(self.users),
            "clients": len(self.clients),
            "sessions": len(self.sessions),
            "ruptures": len(self.ruptures),
            "attempts": sum(len(r.attempts) for r in self.ruptures if r.attempts is not MISSING),
            "checks": len(self.checks),
        }


class _Object(dict):
    """A JSON object in which a key was given more than once (the last would silently win)."""

    __slots__ = ("duplicates",)


def _object(pairs):
    made = dict(pairs)
    if len(made) == len(pairs):
        return made
    seen, duplicates = set(), []
    for key, _ in pairs:
        if key in seen and key not in duplicates:
            duplicates.append(key)
        seen.add(key)
    made = _Object(made)
    made.duplicates = duplicates
    return made


def parse(data: bytes) -> tuple[Any, list[Problem]]:
    """The JSON document in `data`, or the reason it is not one."""
    try:
        seen_duplicates = []

        def hook(pairs):
            made = _object(pairs)
            if type(made) is _Object:
                seen_duplicates.append(made)
            return made

        doc = json.loads(data, parse_constant=_refuse_constant, object_pairs_hook=hook)
        # Their paths are found by walking the document, only when there is one to find.
        return doc, _duplicate_keys(doc) if seen_duplicates else []
    except json.JSONDecodeError as exc:
        return None, [
            Problem("$", f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
        ]
    except UnicodeDecodeError:
        return None, [Problem("$", "not UTF-8 text: save the file as UTF-8 JSON")]
    except RecursionError:
        return None, [Problem("$", "not a caseload file: nested too deeply")]
    except ValueError as exc:  # NaN/Infinity, integers too long to read
        return None, [Problem("$", f"not valid JSON: {exc}")]


def _duplicate_keys(doc) -> list[Problem]:
    """Every object that names a key twice, with its path: refused, never guessed. Past
    MAX_PROBLEMS they are counted, not listed, so the count of the rest is true."""
    problems, more, stack = [], 0, [("", doc)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            if type(value) is _Object:
                for key in value.duplicates:
                    if len(problems) < MAX_PROBLEMS:
                        problems.append(Problem(
                            _member(path, key), "this key appears more than once in the object; give it once"))
                    else:
                        more += 1
            stack.extend((_member(path, k), v) for k, v in reversed(value.items()) if isinstance(v, dict | list))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(value)))
                         if isinstance(v, dict | list))
    return capped(problems, more)


def capped(problems: list[Problem], more: int = 0) -> list[Problem]:
    """At most MAX_PROBLEMS problems, and one line saying how many more there were."""
    more += max(0, len(problems) - MAX_PROBLEMS)
    if not more:
        return problems
    return [*problems[:MAX_PROBLEMS], Problem("$", f"and {more} more problem{'s' if more != 1 else ''} not listed")]


def _refuse_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def check_header(doc) -> list[Problem]:
    """Is this a caseload file of a version this app reads? If not, nothing else is checked."""
    if not isinstance(doc, dict):
        return [Problem("$", f'expected a JSON object with "format": "{FORMAT}", got {_type(doc)}')]
    problems = []
    if doc.get("format") != FORMAT:
        got = _show(doc["format"]) if "format" in doc else "nothing"
        problems.append(Problem("format", f'expected "{FORMAT}", got {got}'))
    version = doc.get("version")
    if type(version) is not int or version not in READS:
        got = _show(version) if "version" in doc else "nothing"
        problems.append(Problem("version", f"this app reads versions {_either([str(v) for v in READS])}, got {got}"))
    if doc.get(PSEUDONYMISED, False) is not False:
        problems.append(Problem(
            PSEUDONYMISED,
            "this is a pseudonymised (de-identified) export: its people, clients and records carry "
            "pseudonyms and its notes are left out, so importing it would add the whole clinic a second "
            "time under those pseudonyms. Import a full export (without --deidentify) instead.",
        ))
    return problems


def wanted_keys(doc) -> dict[str, set]:
    """Every username, client code, session, rupture and deletion key the file names."""
    usernames, codes, sessions, ruptures, deletions, checks = set(), set(), set(), set(), set(), set()

    def add(target, value):
        if type(value) is str:
            target.add(value)

    for user in _records(doc, "users"):
        add(usernames, user.get("username"))
        add(usernames, user.get("supervisor"))
    for client in _records(doc, "clients"):
        add(codes, client.get("code"))
        add(usernames, client.get("therapist"))
    for session in _records(doc, "sessions"):
        add(sessions, session.get("id"))
        add(codes, session.get("client"))
        add(usernames, session.get("therapist"))
    for rupture in _records(doc, "ruptures"):
        add(ruptures, rupture.get("id"))
        add(sessions, rupture.get("session"))
        attempts = rupture.get("attempts")
        if type(attempts) is list:
            for attempt in attempts:
                if type(attempt) is dict:
                    add(sessions, attempt.get("session"))
                    add(deletions, attempt.get("deleted"))
    for check in _records(doc, "checks"):
        add(sessions, check.get("session"))
        add(checks, check.get("id"))
    for section in ("clients", "sessions", "ruptures", "checks"):
        for record in _records(doc, section):
            add(deletions, record.get("deleted"))
    for deletion in _records(doc, "deletions"):
        add(deletions, deletion.get("id"))
        add(usernames, deletion.get("by"))
    return {"usernames": usernames, "client_codes": codes, "session_keys": sessions,
            "rupture_keys": ruptures, "deletion_keys": deletions, "check_keys": checks}


def _records(doc, section):
    records = doc.get(section) if type(doc) is dict else None
    if type(records) is not list:
        return ()
    return (r for r in records if type(r) is dict)


def check(doc, existing: Existing, *, allow_role_changes=False) -> tuple[list[Problem], Caseload | None]:
    """Every problem in the file, in file order; the clean caseload only if there is none."""
    problems = check_header(doc)
    if problems:
        return problems, None
    c = _Checker(existing, version=doc["version"], allow_role_changes=allow_role_changes)
    names = SECTIONS_V2 if doc["version"] >= 2 else SECTIONS
    for name in sorted(doc.keys() - (TOP_FIELDS_V2 if doc["version"] >= 2 else TOP_FIELDS)):
        c.problem(_member("", name), "unknown field")
    if doc.get("free_text", "omitted") != "omitted":
        c.problem("free_text", f'expected "omitted", got {_show(doc["free_text"])}')
    sections = {}
    for name in names:
        records = doc.get(name, [])
        if type(records) is not list:
            c.problem(name, f"expected a list, got {_type(records)}")
            records = []
        sections[name] = records
    # Keys first, so that a reference to a record further down the file resolves.
    c.collect_keys(sections)
    caseload = Caseload(
        users=c.rows(sections["users"], "users", c.user),
        clients=c.rows(sections["clients"], "clients", c.client),
        sessions=c.rows(sections["sessions"], "sessions", c.session),
        ruptures=c.rows(sections["ruptures"], "ruptures", c.rupture),
        deletions=c.rows(sections["deletions"], "deletions", c.deletion),
        role_changes=c.role_changes,
        checks=c.rows(sections.get("checks", []), "checks", c.alliance_check),
        free_text_omitted=doc.get("free_text") == "omitted",
    )
    problems = capped(c.problems, c.more)
    return problems, (None if problems else caseload)


class _Checker:
    def __init__(self, existing: Existing, version: int = VERSION, *, allow_role_changes=False):
        self.existing = existing
        self.version = version
        self.allow_role_changes = allow_role_changes
        self.problems: list[Problem] = []
        self.more = 0  # problems found past MAX_PROBLEMS: counted, not kept
        self.usernames: set = set()
        self.codes: set = set()
        self.session_keys: set = set()
        self.deletion_keys: set = set()
        self.rupture_keys: set = set()
        # The file's sessions: key -> SessionFacts, for the repair-attempt rule.
        self.sessions: dict = {}
        # Roles and clients as they will be once the file is applied.
        self.roles: dict = {}
        self.clients: dict = {}  # code -> ClientFacts
        self.role_changes: list = []
        self.new_skeletons: dict = {}
        # (session key, respondent) -> the path of the file's check for it.
        self.check_slots: dict = {}

    def problem(self, path, message):
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(path, message))
        else:
            self.more += 1

    @property
    def count(self):
        return len(self.problems) + self.more

    # --- Keys and duplicates ------------------------------------------------------

    def collect_keys(self, sections):
        self._keys(sections["users"], "users", "username", "username", self.usernames)
        self._keys(sections["clients"], "clients", "code", "client code", self.codes)
        self._keys(sections["sessions"], "sessions", "id", "session id", self.session_keys)
        self._keys(sections["ruptures"], "ruptures", "id", "rupture id", self.rupture_keys)
        self._keys(sections["deletions"], "deletions", "id", "deletion id", self.deletion_keys)
        for record in sections["users"]:
            if type(record) is dict and type(record.get("username")) is str:
                self.roles.setdefault(record["username"], record.get("role"))
        for record in sections["clients"]:
            if type(record) is dict and type(record.get("code")) is str:
                self.clients.setdefault(record["code"], ClientFacts(record.get("therapist"), record.get("deleted")))
        self._keys(sections.get("checks", []), "checks", "id", "check id", set())

    def _keys(self, records, section, name, what, keys):
        first_at = {}
        for i, record in enumerate(records):
            if type(record) is not dict:
                continue
            key = record.get(name)
            if type(key) is not str:
                continue
            if key in first_at:
                self.problem(
                    f"{section}[{i}].{name}",
                    f"duplicate {what} {_show(key)} (first at {section}[{first_at[key]}])",
                )
            else:
                first_at[key] = i
                keys.add(key)

    # --- Records ---------------------------------------------------------------------

    def rows(self, records, section, check_one):
        rows = []
        for i, record in enumerate(records):
            path = f"{section}[{i}]"
            row = check_one(record, path)
            if row is not None:
                rows.append(row)
        return rows

    def allowed(self, fields, section):
        return fields | V2_FIELDS[section] if self.version >= 2 else fields

    def fields(self, record, path, required, allowed):
        """Is `record` an object with its required fields and no unknown ones?"""
        if type(record) is not dict:
            self.problem(path, f"expected an object, got {_type(record)}")
            return False
        for name in sorted(record.keys() - allowed):
            later = self.version < 2 and any(name in added for added in V2_FIELDS.values())
            self.problem(
                _member(path, name), "a version 2 field, in a version 1 file" if later else "unknown field"
            )
        ok = True
        for name in required:
            if name not in record:
                self.problem(f"{path}.{name}", "missing")
                ok = False
        return ok

    def user(self, record, path):
        if not self.fields(record, path, USER_REQUIRED, USER_FIELDS):
            return None
        n = self.count
        username = record["username"]
        before = self.existing.roles.get(username) if type(username) is str else None
        if type(username) is not str or not USERNAME_RE.fullmatch(username):
            self.problem(
                f"{path}.username",
                "expected 1-150 letters, digits and @ . + - _, got " + _show(username),
            )
        elif before is None:
            self.new_username(username, f"{path}.username")
        role = self.slug(record["role"], f"{path}.role", ROLES, "role")
        if before is not None and role in ROLES and role != before:
            if self.allow_role_changes:
                self.role_changes.append((username, before, role))
            else:
                self.problem(
                    f"{path}.role",
                    f"{_show(username)} is a {before} in the database; an import changes a person's "
                    "role only when given --allow-role-changes",
                )
        row = UserRow(username=username, role=role)
        if "name" in record:
            row.name = self.text(record["name"], f"{path}.name", DISPLAY_NAME_MAX)
        if "email" in record:
            row.email = self.email(record["email"], f"{path}.email")
        if "supervisor" in record:
            supervisor = record["supervisor"]
            if supervisor is not None:
                self.user_ref(supervisor, f"{path}.supervisor")
                if supervisor == username:
                    self.problem(f"{path}.supervisor", "a user cannot supervise themself")
                elif role in ROLES and role != "therapist":
                    self.problem(f"{path}.supervisor", f"only therapists have a supervisor, and this is a {role}")
                else:
                    self.role_is(supervisor, "supervisor", f"{path}.supervisor")
            row.supervisor = supervisor
        return row if self.count == n else None

    def client(self, record, path):
        if not self.fields(record, path, CLIENT_REQUIRED, self.allowed(CLIENT_FIELDS, "clients")):
            return None
        n = self.count
        code = record["code"]
        if type(code) is not str or not CASE_CODE_RE.fullmatch(code):
            self.problem(
                f"{path}.code",
                "expected 1-32 letters, digits, dots, dashes or underscores, "
                "starting with a letter or digit, got " + _show(code),
            )
        if self.user_ref(record["therapist"], f"{path}.therapist"):
            self.role_is(record["therapist"], "therapist", f"{path}.therapist")
        row = ClientRow(
            code=code,
            therapist=record["therapist"],
            status=self.slug(record["status"], f"{path}.status", CLIENT_STATUSES, "client status"),
            started_on=self.date(record["started_on"], f"{path}.started_on"),
        )
        if "name" in record:
            row.name = self.text(record["name"], f"{path}.name", CLIENT_NAME_MAX)
        if "ending" in record:
            # "" is no ending: what an export writes for a client still in therapy.
            row.ending = self.slug(record["ending"], f"{path}.ending", ("", *ENDINGS), "ending")
            if row.ending and row.status != "discharged":
                self.problem(
                    f"{path}.ending", f"only a discharged client has an ending; this one is {_show(row.status)}"
                )
        row.deleted = self.deleted(record, path, "client", self.existing.clients.get(code))
        return row if self.count == n else None

    def session(self, record, path):
        if not self.fields(record, path, SESSION_REQUIRED, SESSION_FIELDS):
            return None
        n = self.count
        key = self.key(record["id"], f"{path}.id")
        client = record["client"]
        self.client_ref(client, f"{path}.client")
        self.user_ref(record["therapist"], f"{path}.therapist")
        starts_at = self.timestamp(record["starts_at"], f"{path}.starts_at")
        row = SessionRow(
            key=key,
            client=client,
            therapist=record["therapist"],
            starts_at=starts_at,
            status=self.slug(
                record["status"], f"{path}.status", SESSION_STATUSES, "session status"
            ),
        )
        if self.count != n:
            return None
        before = self.existing.sessions.get(key)
        if before is not None and before.client != client:
            # Its ruptures and their repair attempts belong to that client's record.
            self.problem(
                f"{path}.client",
                f"session {_show(key)} is client {_show(before.client)}'s "
                "in the database; an import cannot move it to another client",
            )
            return None
        if before is not None and before.therapist != row.therapist and not self.client_moves_to(client, row.therapist):
            self.problem(
                f"{path}.therapist",
                f"session {_show(key)} is {_show(before.therapist)}'s in the database; an import moves a "
                "session to another therapist only with its client (give the client that therapist)",
            )
            return None
        row.deleted = self.deleted(record, path, "session", before)
        self.under(path, row.deleted, self.client_deleted(client), "client", client)
        if self.count != n:
            return None
        self.sessions[key] = SessionFacts(client, starts_at, row.therapist, row.deleted)
        return row

    def rupture(self, record, path):
        if not self.fields(record, path, RUPTURE_REQUIRED, self.allowed(RUPTURE_FIELDS, "ruptures")):
            return None
        n = self.count
        session = self.session_ref(record["session"], f"{path}.session")
        actor = self.slug(record["actor"], f"{path}.actor", ACTORS, "actor")
        markers = self.slug_list(record["markers"], f"{path}.markers", MARKERS, "marker")
        if markers == [] and actor == "client":
            self.problem(f"{path}.markers", "a client-side rupture needs at least one marker")
        row = RuptureRow(
            key=self.key(record["id"], f"{path}.id"),
            session=record["session"],
            kind=self.slug(record["kind"], f"{path}.kind", KINDS, "kind"),
            actor=actor,
            markers=markers,
            intensity=self.intensity(record["intensity"], f"{path}.intensity"),
            source=self.slug(record["source"], f"{path}.source", SOURCES, "source"),
            repair_status=self.slug(
                record["repair_status"], f"{path}.repair_status", REPAIR_STATUSES, "repair status"
            ),
        )
        if "internal_signals" in record:
            row.internal_signals = self.slug_list(
                record["internal_signals"], f"{path}.internal_signals", SIGNALS, "internal signal"
            )
        if "minute" in record:
            row.minute = self.minute(record["minute"], f"{path}.minute")
        if "note" in record:
            row.note = self.text(record["note"], f"{path}.note", TEXT_MAX)
        if "plan" in record:
            row.plan = self.text(record["plan"], f"{path}.plan", TEXT_MAX)
        before = self.existing.ruptures.get(row.key) if type(row.key) is str else None
        if before is not None and session is not None and session.client != before.client:
            # The owner would get a 404 on their own rupture, and another therapist read it.
            self.problem(
                f"{path}.session",
                f"rupture {_show(row.key)} is client {_show(before.client)}'s in the database; an import "
                f"cannot move it to a session of client {_show(session.client)}",
            )
        row.deleted = self.deleted(record, path, "rupture", before)
        if session is not None:
            self.under(path, row.deleted, session.deleted, "session", record["session"])
        if "attempts" in record:
            row.attempts = self.attempts(record["attempts"], f"{path}.attempts", session, row.deleted)
        if "risk" in record:
            row.risk = self.slug(record["risk"], f"{path}.risk", RISKS, "risk")
        if "declined_relational_talk" in record:
            declined = record["declined_relational_talk"]
            if type(declined) is not bool:
                self.problem(f"{path}.declined_relational_talk", f"expected true or false, got {_show(declined)}")
            row.declined_relational_talk = declined
        return row if self.count == n else None

    def deletion(self, record, path):
        if not self.fields(record, path, DELETION_REQUIRED, DELETION_FIELDS):
            return None
        n = self.count
        row = DeletionRow(
            key=self.key(record["id"], f"{path}.id"),
            at=self.timestamp(record["at"], f"{path}.at"),
            by=record.get("by"),
            reason=self.text(record.get("reason", REASON_NOT_IN_FILE), f"{path}.reason", REASON_MAX),
            record_type="",
            record_key="",
        )
        if row.by is not None:
            self.user_ref(row.by, f"{path}.by")
        if type(row.reason) is str and not row.reason.strip():
            self.problem(f"{path}.reason", "a deletion says why")
        target = record["record"]
        if type(target) is not dict or set(target) != {"type", "id"} or target["type"] not in DELETED_RECORD_TYPES:
            self.problem(
                f"{path}.record",
                f'expected {{"type": {_either(DELETED_RECORD_TYPES)}, "id": its key}}, got {_show(target)}',
            )
        else:
            row.record_type, row.record_key = target["type"], target["id"]
            known = {
                "client": self.codes | self.existing.client_codes,
                "session": self.session_keys | set(self.existing.sessions),
                "rupture": self.rupture_keys | set(self.existing.ruptures),
            }[row.record_type]
            if row.record_key not in known:
                self.problem(f"{path}.record.id", f"no {row.record_type} {_show(row.record_key)} in the file "
                                                  "or the database")
        return row if self.count == n else None

    def attempts(self, value, path, rupture_session, rupture_deleted=None):
        if type(value) is not list:
            self.problem(path, f"expected a list, got {_type(value)}")
            return []
        rows = []
        for i, record in enumerate(value):
            at = f"{path}[{i}]"
            if not self.fields(record, at, ATTEMPT_REQUIRED, self.allowed(ATTEMPT_FIELDS, "attempts")):
                continue
            session = self.session_ref(record["session"], f"{at}.session")
            if session is not None and rupture_session is not None:
                # The rule the database's trigger keeps: tried in the rupture's session or a
                # later one of the same client.
                if session.client != rupture_session.client:
                    self.problem(
                        f"{at}.session",
                        f"session {_show(record['session'])} is client "
                        f"{_show(session.client)}'s, not {_show(rupture_session.client)}'s "
                        "like the rupture's session",
                    )
                elif session.starts_at < rupture_session.starts_at:
                    self.problem(
                        f"{at}.session",
                        f"session {_show(record['session'])} is before the rupture's session",
                    )
            outcome = record["outcome"]
            if outcome == "unaddressed":
                self.problem(f"{at}.outcome", 'an attempt\'s outcome cannot be "unaddressed"')
            else:
                self.slug(outcome, f"{at}.outcome", OUTCOMES, "outcome")
            row = AttemptRow(
                session=record["session"],
                outcome=outcome,
                strategy=self.slug(record["strategy"], f"{at}.strategy", STRATEGIES, "strategy"),
            )
            if "note" in record:
                row.note = self.text(record["note"], f"{at}.note", TEXT_MAX)
            if "stage_reached" in record:
                row.stage_reached = self.slug(
                    record["stage_reached"], f"{at}.stage_reached", ("", *STAGES), "stage"
                )
            row.deleted = self.deleted(record, at, "repair attempt", None)
            self.under(at, row.deleted, rupture_deleted, "rupture", "")
            if session is not None:
                self.under(at, row.deleted, session.deleted, "session", record["session"])
            rows.append(row)
        return rows

    # --- Deleted records -----------------------------------------------------------------

    def deleted(self, record, path, what, before):
        """The deletion key a record names (None: not deleted), as the database allows it."""
        deleted = record.get("deleted")
        if deleted is not None and (type(deleted) is not str or (
            deleted not in self.deletion_keys and deleted not in self.existing.deletions
        )):
            self.problem(f"{path}.deleted", f"no deletion {_show(deleted)} in the file or the database")
            return None
        if before is None:
            return deleted  # a new record: a backup brings deleted records back hidden
        was = before.deleted
        if was == deleted:
            return deleted
        if was is not None and deleted is None:
            self.problem(path, f"this {what} is deleted in the database ({_show(was)}); restore it with "
                               "restore_record before importing changes to it")
        elif was is None:
            self.problem(f"{path}.deleted", f"an import does not delete records: delete this {what} in the app")
        else:
            self.problem(f"{path}.deleted", f"the database hides this {what} under deletion {_show(was)}")
        return deleted

    def under(self, path, deleted, parent_deleted, parent, key):
        if parent_deleted and not deleted:
            named = f" {_show(key)}" if key else ""
            self.problem(path, f"its {parent}{named} is deleted: nothing can be attached to a deleted record")

    def client_deleted(self, code):
        facts = self.clients.get(code) or self.existing.clients.get(code)
        return facts.deleted if facts is not None else None

    def client_moves_to(self, code, therapist):
        """Does the file give client `code` to `therapist`, who was not its therapist before?"""
        in_file, before = self.clients.get(code), self.existing.clients.get(code)
        return (
            in_file is not None and in_file.therapist == therapist
            and (before is None or before.therapist != therapist)
        )

    # --- People --------------------------------------------------------------------------

    def role_of(self, username):
        return self.roles.get(username) or self.existing.roles.get(username)

    def role_is(self, username, role, path):
        actual = self.role_of(username)
        if type(username) is str and actual is not None and actual != role:
            self.problem(path, f"{_show(username)} is a {actual}, not a {role}")

    def new_username(self, username, path):
        if not NEW_USERNAME_RE.fullmatch(username):
            self.problem(path, f"a new username uses only a-z, 0-9, dot, dash and underscore, got {_show(username)}")
            return
        shape = skeleton(username)
        other = self.existing.skeletons.get(shape) or self.new_skeletons.get(shape)
        if other is not None and other != username:
            self.problem(path, f"{_show(username)} looks like the username {_show(other)}: choose one that "
                               "cannot be mistaken for it")
        self.new_skeletons.setdefault(shape, username)

    # --- References --------------------------------------------------------------------

    def user_ref(self, value, path):
        if type(value) is not str:
            self.problem(path, f"expected a username, got {_show(value)}")
        elif value not in self.usernames and value not in self.existing.usernames:
            self.problem(path, f"no user {_show(value)} in the file or the database")
        else:
            return True
        return False

    def client_ref(self, value, path):
        if type(value) is not str:
            self.problem(path, f"expected a client code, got {_show(value)}")
        elif value not in self.codes and value not in self.existing.client_codes:
            self.problem(path, f"no client {_show(value)} in the file or the database")

    def alliance_check(self, record, path):
        if not self.fields(record, path, CHECK_REQUIRED, CHECK_FIELDS):
            return None
        n = self.count
        key = self.key(record["id"], f"{path}.id")
        session = record["session"]
        facts = self.session_ref(session, f"{path}.session")
        before = self.existing.checks.get(key) if type(key) is str else None
        deleted = self.deleted(record, path, "alliance check", before)
        if facts is not None:
            self.under(path, deleted, facts.deleted, "session", session)
            if before is not None and facts.client != before.client:
                self.problem(f"{path}.session", f"check {_show(key)} is client {_show(before.client)}'s in the "
                             f"database; an import cannot move it to a session of client {_show(facts.client)}")
        respondent = self.slug(record["respondent"], f"{path}.respondent", RESPONDENTS, "respondent")
        slug, version = record["instrument"], record["version"]
        items = None
        if type(slug) is not str or type(version) is not int:
            self.problem(f"{path}.instrument", f"expected an instrument slug and a whole-number version, got "
                         f"{_show(slug)} and {_show(version)}")
        elif respondent in RESPONDENTS:
            items = self.existing.instruments.get((slug, version, respondent))
            if items is None:
                self.problem(f"{path}.instrument", f"no instrument {_show(slug)} version {version} for the "
                             f"{respondent} is loaded (see load_instrument)")
        declined = record["declined"]
        if type(declined) is not bool:
            self.problem(f"{path}.declined", f"expected true or false, got {_show(declined)}")
        answers = record["answers"]
        if type(answers) is not dict:
            self.problem(f"{path}.answers", f"expected an object of answers, got {_type(answers)}")
        elif declined is True and answers:
            self.problem(f"{path}.answers", "a declined check has no answers")
        elif items is not None:
            self._answers(answers, items, f"{path}.answers")
        submitted_at = self.timestamp(record["submitted_at"], f"{path}.submitted_at")
        if self.count != n:
            return None
        row = CheckRow(key=key, session=session, respondent=respondent, instrument=slug, version=version,
                       answers=answers, submitted_at=submitted_at, declined=declined, deleted=deleted)
        if deleted is not None:
            return row  # hidden: it takes no session's place (a live check may have taken it since)
        slot = (session, respondent)
        if slot in self.check_slots:
            self.problem(f"{path}.session", f"a second {respondent} check of session {_show(session)} "
                         f"(first at {self.check_slots[slot]})")
            return None
        self.check_slots[slot] = path
        holder = self.existing.check_slots.get(slot)
        if holder is not None and holder != key:
            self.problem(f"{path}.session", f"session {_show(session)} already has a {respondent} check, "
                         f"{_show(holder)}, in the database")
            return None
        return row

    def _answers(self, answers, items, path):
        by_slug = {item["slug"]: item for item in items}
        for slug, value in answers.items():
            where = _member(path, slug)
            item = by_slug.get(slug)
            if item is None:
                self.problem(where, "no such item in this instrument")
            elif item["type"] == "choice":
                allowed = [c["slug"] for c in item["choices"]]
                if value not in allowed:
                    self.problem(where, f"expected {_either([json.dumps(a) for a in allowed])}, got {_show(value)}")
            elif item["type"] == "scale":
                if type(value) is not int or not 1 <= value <= 5:
                    self.problem(where, f"expected a whole number from 1 to 5, got {_show(value)}")
            elif type(value) is not str or len(value) > item["max_length"] or "\x00" in value:
                self.problem(where, f"expected text of at most {item['max_length']} characters, got {_show(value)}")

    def session_ref(self, value, path) -> SessionFacts | None:
        """The session's client and time, as the file (else the database) has them."""
        if type(value) is not str:
            self.problem(path, f"expected a session id, got {_show(value)}")
            return None
        if value in self.session_keys:
            # None when the session's own record has a problem: reported there, once.
            return self.sessions.get(value)
        facts = self.existing.sessions.get(value)
        if facts is None:
            self.problem(path, f"no session {_show(value)} in the file or the database")
        return facts

    # --- Values --------------------------------------------------------------------------

    def key(self, value, path):
        if (
            type(value) is not str
            or not value
            or len(value) > KEY_MAX
            or not value.isprintable()
            or value.strip() != value
        ):
            self.problem(
                path, f"expected an id of 1-{KEY_MAX} printable characters, got {_show(value)}"
            )
        return value

    def slug(self, value, path, allowed, what):
        if type(value) is not str or value not in allowed:
            listed = f" (expected {_either(allowed)})" if isinstance(allowed, tuple) else ""
            self.problem(path, f"unknown {what} {_show(value)}{listed}")
        return value

    def slug_list(self, value, path, allowed, what):
        if type(value) is not list:
            self.problem(path, f"expected a list of {what}s, got {_type(value)}")
            return None
        seen = set()
        for i, slug in enumerate(value):
            if type(slug) is not str or slug not in allowed:
                self.problem(f"{path}[{i}]", f"unknown {what} {_show(slug)}")
            elif slug in seen:
                self.problem(f"{path}[{i}]", f"{what} {_show(slug)} is listed twice")
            else:
                seen.add(slug)
        return value

    def intensity(self, value, path):
        if type(value) is not int:
            self.problem(path, f"expected a whole number from 1 to 5, got {_show(value)}")
        elif not 1 <= value <= 5:
            self.problem(path, f"intensity {value} is outside 1-5")
        return value

    def minute(self, value, path):
        if value is None:
            return None
        if type(value) is not int or not 0 <= value <= MINUTE_MAX:
            self.problem(
                path,
                f"expected a whole number of minutes from 0 to {MINUTE_MAX} "
                f"or null, got {_show(value)}",
            )
        return value

    def text(self, value, path, max_length=None):
        if type(value) is not str:
            self.problem(path, f"expected text, got {_type(value)}")
        elif max_length is not None and len(value) > max_length:
            self.problem(path, f"longer than {max_length} characters ({len(value)})")
        elif "\x00" in value:
            # PostgreSQL refuses NUL in text.
            self.problem(path, "contains a NUL character")
        elif not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                self.problem(path, "contains an unpaired surrogate (\\ud800-\\udfff)")
        return value

    def email(self, value, path):
        value = self.text(value, path, EMAIL_MAX)
        if type(value) is str and value:
            try:
                _email(value)
            except ValidationError:
                self.problem(path, f"not an e-mail address: {_show(value)}")
        return value

    def date(self, value, path):
        if type(value) is str:
            try:
                parsed = date.fromisoformat(value)
            except ValueError:
                pass
            else:
                if YEARS[0] <= parsed.year <= YEARS[1]:
                    return parsed
                self.problem(path, f"{_show(value)} is not a year from {YEARS[0]} to {YEARS[1]}")
                return None
        self.problem(path, f"expected a date like 2026-01-12, got {_show(value)}")
        return None

    def timestamp(self, value, path):
        if type(value) is str:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                pass
            else:
                if parsed.tzinfo is None:
                    self.problem(
                        path,
                        f"{_show(value)} has no UTC offset "
                        "(write it like 2026-11-20T10:00:00+00:00)",
                    )
                    return None
                if not YEARS[0] <= parsed.year <= YEARS[1]:
                    self.problem(
                        path, f"{_show(value)} is not a year from {YEARS[0]} to {YEARS[1]}"
                    )
                    return None
                return parsed
        self.problem(
            path,
            f"expected an ISO 8601 timestamp with offset, like "
            f"2026-11-20T10:00:00+00:00, got {_show(value)}",
        )
        return None


# --- Look-alike usernames --------------------------------------------------------------------

# Letters of other scripts that read as Latin ones, and Latin runs that read as one letter:
# enough to catch the look-alikes a person would be fooled by in a list of names.
_HOMOGLYPHS = str.maketrans({
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "ѕ": "s", "і": "i", "ј": "j", "ԁ": "d", "ɡ": "g", "ӏ": "l", "ԛ": "q", "ԝ": "w",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "ı": "i", "ł": "l",
    "0": "o", "1": "l", "i": "l", "|": "l", "5": "s", "$": "s", "@": "a",
    ".": None, "_": None, "-": None, "+": None,
})


def skeleton(username: str) -> str:
    """What a username looks like: two usernames with one skeleton are confusable."""
    text = unicodedata.normalize("NFKD", username).casefold()
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.translate(_HOMOGLYPHS).replace("rn", "m").replace("vv", "w").replace("cl", "d")


# --- Messages ----------------------------------------------------------------------------


def _show(value, limit=60):
    """A value as it appears in the file, cut short: messages must stay one line."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _type(value):
    return {
        dict: "an object",
        list: "a list",
        str: "text",
        bool: "true/false",
        type(None): "null",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _either(options):
    return ", ".join(options[:-1]) + " or " + options[-1]


def _member(path, name):
    """The path of a member, quoted when the name would not read as one."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return f"{path}.{name}" if path else name
    return f"{path}[{json.dumps(name, ensure_ascii=False)}]"
