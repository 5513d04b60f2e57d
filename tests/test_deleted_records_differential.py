"""Nothing deleted counts or shows anywhere: one clinic with deletions against the same clinic
built without the deleted records. Every list and count page, every report and every
command's output must be the same in both (the full backup export aside, which carries
deleted records on purpose).

Every URL pattern is either compared here (PAGES) or named in NOT_COMPARED with the
reason, so a new page joins the comparison or says why not.
"""

import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import transaction
from django.test import Client as Browser
from django.test import override_settings

from accounts.models import Role, User
from audit.deletion import clinical_models
from reminders.models import Flag
from reminders.sweep import sweep
from tests.conftest import login
from tests.factories import (
    make_attempt,
    make_check,
    make_client,
    make_rupture,
    make_session,
    make_user,
    supervise,
)
from tests.test_access_matrix import url_names

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
# pytest-django creates the test database only for the aliases its collected tests ask
# for; the clinics are built in a module fixture, so the tests ask here (else, run alone,
# the file would reach the real database).
pytestmark = pytest.mark.django_db

# What is deleted in the first clinic, and never made in the second.
DELETED = {"C-3", "S-1-0", "R-2-1"}

# url name -> [(persona, URL)]: each page as a person who sees the figures on it.
PAGES = {
    "home": [("dlee", "/"), ("mokafor", "/"), ("admin", "/")],
    "client_list": [("dlee", "/clients/"), ("mokafor", "/clients/"), ("dlee", "/clients/?status=active")],
    "client_detail": [("dlee", "/clients/C-1/"), ("dlee", "/clients/C-2/"), ("mokafor", "/clients/C-1/")],
    "session_detail": [("dlee", "session:S-1-1"), ("dlee", "session:S-2-1"), ("dlee", "session:S-2-2")],
    "session_brief": [("dlee", "brief:S-1-up"), ("dlee", "brief:S-2-up"), ("mokafor", "brief:S-1-up")],
    "rupture_detail": [("dlee", "rupture:R-1-1"), ("dlee", "rupture:R-2-2"), ("mokafor", "rupture:R-2-2")],
    "supervision_dashboard": [("mokafor", "/supervision/"), ("admin", "/supervision/")],
    # The discharge form lists the client's open ruptures first.
    "client_discharge": [("dlee", "/clients/C-1/discharge"), ("dlee", "/clients/C-2/discharge")],
    "supervision_caseload": [("mokafor", "/supervision/dlee/"), ("mokafor", "/supervision/dlee/?period=4w")],
    # The alliance report, as its supervisor and the clinic's admin read it.
    "report_alliance": [("mokafor", "/reports/alliance/"), ("admin", "/reports/alliance/")],
    "report_alliance_csv": [("mokafor", "/reports/alliance/report.csv"), ("admin", "/reports/alliance/report.csv")],
    # The one list of clinical records in the admin site: clients, for assignments.
    "admin:therapy_sessions_client_changelist": [("admin", "/admin/therapy_sessions/client/")],
}
# The rest of the admin site: people, groups, supervision links and one record's forms.
ADMIN_FORMS = "the admin site's pages about people, or one record's form: no clinical list or count"
NOT_COMPARED = {
    # Forms and actions: they show one record, or none, and count nothing.
    **dict.fromkeys([
        "login", "logout", "password_change", "password_change_done", "password_reset", "password_reset_done",
        "password_reset_confirm", "password_reset_complete", "mfa_overview", "mfa_setup", "mfa_verify",
        "mfa_recovery_codes", "mfa_remove", "healthz", "client_new", "client_edit", "client_delete",
        "session_new", "session_status", "session_no_rupture", "session_delete", "rupture_new", "rupture_edit",
        "attempt_new", "rupture_status", "rupture_delete", "supervision_discuss", "exchange_upload_new",
        "exchange_upload_apply", "exchange_upload_discard", "deletion_restore", "client_check", "session_check",
        "session_ask_client",
    ], "a form or an action, not a list or a count"),
    # Records of what happened, deletions included, on purpose.
    "client_access_log": "the audit trail: who opened what, whatever happened to it since",
    "deletion_list": "the list of deletions itself",
    "exchange": "the admin's uploads, not clinical records",
    "report_alliance_xlsx": "the CSV's figures in a spreadsheet (the CSV is compared)",
    "report_alliance_pdf": "a form that queues the PDF: an action, not a page",
    "report_job": "one background report's status; its figures are the CSV's",
    "report_job_download": "one background report's file; its figures are the CSV's",
    "report_research": "a de-identified extract numbered afresh each time: two extracts never match",
    "exchange_upload": "one upload's report",
    "exchange_upload_report": "one upload's report",
    "exchange_export": "the full export carries deleted records on purpose (the pseudonymised one is compared)",
}


def days(n, hour=10):
    return (NOW + timedelta(days=n)).replace(hour=hour, minute=0)


def build(*, deleted):
    """The clinic; with `deleted` the DELETED records are made and then deleted, else never made."""
    skip = set() if deleted else DELETED
    dlee = make_user("therapist", "dlee")
    apatel = make_user("therapist", "apatel")
    mokafor = make_user("supervisor", "mokafor")
    make_user("admin", "admin")
    supervise(mokafor, dlee)
    supervise(mokafor, apatel)
    records = {}
    for c, therapist in [(1, dlee), (2, dlee), (3, dlee), (4, apatel)]:
        code = f"C-{c}"
        if code in skip:
            continue
        client = records[code] = make_client(therapist, code=code)
        for n in range(4):
            key = f"S-{c}-{n}"
            if key not in skip:
                records[key] = make_session(client, key=key, starts_at=days(7 * n - 28))
        # Cancelled between the second and third sessions: the second's open rupture stalls.
        records[f"S-{c}-x"] = make_session(client, key=f"S-{c}-x", starts_at=days(-19), status="cancelled")
        for up, at in (("up", days(1)), ("up2", days(3))):
            records[f"S-{c}-{up}"] = make_session(client, key=f"S-{c}-{up}", starts_at=at, status="scheduled")
        for n, (kind, markers, status, intensity) in enumerate([
            ("withdrawal", ["minimal_response"], "unaddressed", 4),
            ("withdrawal", ["minimal_response", "topic_shift"], "attempted", 2),
            ("confrontation", ["complaint_about_therapist"], "resolved", 3),
            ("withdrawal", ["topic_shift"], "unresolved", 5),
        ]):
            key, session = f"R-{c}-{n}", records.get(f"S-{c}-{n}")
            if key in skip or session is None:
                continue
            rupture = records[key] = make_rupture(
                session, key=key, kind=kind, markers=markers, repair_status=status, intensity=intensity,
                plan=f"Plan for {key}", risk="self_harm" if n == 3 else "none",
            )
            tried_in = [records.get(f"S-{c}-{m}") for m in range(n, 4)]
            for m, later in enumerate(s for s in tried_in if s is not None):
                if m < 2:
                    make_attempt(rupture, session=later, strategy="invite_discussion",
                                 outcome="resolved" if m else "attempted")
    add_checks_and_notes(records, mokafor, skip)
    sweep(now=NOW, window=timedelta(hours=48))
    if deleted:
        by = {"C": dlee, "S": dlee, "R": dlee}
        for key in sorted(DELETED):
            records[key].soft_delete(by=by[key[0]], reason=f"Test: {key}")
        # In the app a deletion asks for a sweep of its client once it commits; this
        # clinic is rolled back, never committed, so the sweep is run here.
        sweep(now=NOW, window=timedelta(hours=48))
    return records


def add_checks_and_notes(records, supervisor, skip):
    """Both sides' alliance checks of each held session, one with a rupture the client
    reported and the therapist did not log, one a drop; a supervision note on each first
    rupture. On the deleted records too: they must vanish with them."""
    from checks.instruments import SHIPPED, load_file
    from checks.models import Instrument
    from supervision.models import SupervisionNote

    if not Instrument.objects.filter(slug="alliance_check").exists():
        load_file(SHIPPED.read_bytes(), instrument_model=Instrument)
    for c in (1, 2, 3, 4):
        for n in range(4):
            session = records.get(f"S-{c}-{n}")
            if session is None or f"S-{c}-{n}" in skip:
                continue
            key = f"K-{c}-{n}"
            make_check(session, "therapist", key=f"{key}-t", tension="no", together=4)
            if n == 1:
                make_check(session, "client", key=f"{key}-c", tension="yes", intensity=4, worked_through=1, together=5)
            elif n == 2:
                make_check(session, "client", key=f"{key}-c", declined=True)
            else:
                make_check(session, "client", key=f"{key}-c", tension="no", together=2 if n == 3 else 5)
        rupture = records.get(f"R-{c}-0")
        if rupture is not None:
            SupervisionNote.objects.create(rupture=rupture, supervisor=supervisor, comment=f"Noted {rupture.key}.",
                                           created_at=days(-3))


def url_of(target, records):
    kind, _, key = target.partition(":")
    if not key:
        return target
    pk = records[key].pk
    return {"session": f"/sessions/{pk}/", "brief": f"/sessions/{pk}/brief", "rupture": f"/ruptures/{pk}/"}[kind]


def normalised(html):
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
    html = re.sub(r'"X-CSRFToken": "[^"]+"', "", html)
    html = re.sub(r"(/sessions/|/ruptures/|rupture-|/deletions/|/client/)\d+", r"\1N", html)
    html = re.sub(r'(name="_selected_action" value=")\d+', r"\1N", html)
    html = re.sub(r"(__id__exact=)\d+", r"\1N", html)
    html = re.sub(r'((?:aria-labelledby|id)="voice-)\d+', r"\1N", html)
    html = re.sub(r'<option value="\d+"', '<option value="N"', html)
    # When each row was written is the database's transaction clock, not the clinic's.
    html = re.sub(r'<section class="card" aria-labelledby="history-h">.*?</section>', "", html, flags=re.S)
    return html


def observe(*, deleted):
    """Every compared page and command output of one clinic, then the clinic rolled back."""
    seen = {}
    with transaction.atomic():
        # An earlier transactional test's flush empties the role groups a migration made.
        for role in Role.values:
            Group.objects.get_or_create(name=role)
        records = build(deleted=deleted)
        people = {u.username: u for u in User.objects.all()}
        for name, pages in PAGES.items():
            for persona, target in pages:
                browser = login(Browser(), people[persona])
                response = browser.get(url_of(target, records))
                seen[(name, persona, target)] = (response.status_code, normalised(response.content.decode()))
        out = io.StringIO()
        call_command("flag_open_ruptures", "--json", "--now", days(2).isoformat(), "--window", "48", stdout=out)
        seen[("command", "flag_open_ruptures --json", "")] = out.getvalue()
        out = io.StringIO()
        call_command("export_caseload", "--deidentify", stdout=out)
        seen[("command", "export_caseload --deidentify", "")] = out.getvalue()
        # Stalled flags are raised by the sweep without a session: hidden with their rupture all the same.
        stalled = Flag.all_objects.filter(reason="stalled").order_by("rupture__key")
        seen[("flags", "stalled", "")] = list(stalled.filter(deleted_at=None).values_list("rupture__key", flat=True))
        seen[("hidden", "stalled", "")] = list(stalled.exclude(deleted_at=None).values_list("rupture__key", flat=True))
        transaction.set_rollback(True)
    return seen


@pytest.fixture(scope="module")
def both_clinics(django_db_setup, django_db_blocker):
    settings = {
        "MFA_REQUIRED_ROLES": [], "SUPERVISION_CACHE_SECONDS": 0,
        "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    with django_db_blocker.unblock(), override_settings(**settings), time_machine.travel(NOW, tick=False):
        return observe(deleted=True), observe(deleted=False)


def test_every_url_pattern_is_compared_or_says_why_not():
    names = set(url_names())
    # An admin list of clinical records is compared like any other list; the rest of the
    # admin site is ADMIN_FORMS.
    clinical_lists = {f"admin:{m._meta.app_label}_{m._meta.model_name}_changelist" for m in clinical_models()}
    other_admin = {name for name in names if name.startswith("admin:")} - clinical_lists
    assert names & clinical_lists <= set(PAGES)
    assert names - other_admin == set(PAGES) | set(NOT_COMPARED)
    assert not set(PAGES) & set(NOT_COMPARED)


CASES = [(name, persona, target) for name, pages in PAGES.items() for persona, target in pages] + [
    ("command", "flag_open_ruptures --json", ""),
    ("command", "export_caseload --deidentify", ""),
    ("flags", "stalled", ""),
]


@pytest.mark.parametrize("case", CASES, ids=[" ".join(filter(None, case)) for case in CASES])
def test_deleted_records_leave_no_trace(both_clinics, case):
    with_deleted, without = both_clinics
    assert with_deleted[case] == without[case]


def test_the_clinic_has_something_to_compare(both_clinics):
    """The comparison is not of two empty pages: the records are there and shown."""
    with_deleted, _ = both_clinics
    status, html = with_deleted[("client_list", "dlee", "/clients/")]
    assert status == 200 and "C-1" in html and "C-2" in html and "C-3" not in html
    status, html = with_deleted[("session_brief", "dlee", "brief:S-1-up")]
    assert status == 200 and "Plan for R-1-1" in html and "Plan for R-1-0" not in html
    raised = json.loads(with_deleted[("command", "flag_open_ruptures --json", "")])
    assert {flag["client"] for flag in raised} == {"C-1", "C-2", "C-4"}
    assert "R-1-1" in with_deleted[("flags", "stalled", "")]
    status, csv = with_deleted[("report_alliance_csv", "admin", "/reports/alliance/report.csv")]
    assert status == 200 and "withdrawal" in csv
    assert "R-2-1" in with_deleted[("hidden", "stalled", "")]

