"""Every URL pattern, every kind of person: the status each gets is written down here.

A URL pattern with no row fails `test_it_has_a_row_for_every_url_pattern`, so a new
page cannot skip the question of who may see it.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import mfa
from exchange.models import CaseloadUpload, UploadStatus
from reminders.models import SweepHeartbeat
from ruptures.models import RuptureEvent
from tests.conftest import login
from tests.factories import make_attempt, make_session

PERSONAS = ["anonymous", "therapist", "other_therapist", "supervisor", "other_supervisor", "admin_user"]

# name: (url template, {persona: status}); "*" is the default for personas not named.
LOGIN = 302
MATRIX = {
    "login": ("/accounts/login/", {"anonymous": 200, "*": 302}),
    "logout": ("/accounts/logout/", {"anonymous": LOGIN, "*": 405}),
    "password_change": ("/accounts/password_change/", {"anonymous": LOGIN, "*": 200}),
    "password_change_done": ("/accounts/password_change/done/", {"anonymous": LOGIN, "*": 200}),
    "password_reset": ("/accounts/password_reset/", {"*": 200}),
    "password_reset_done": ("/accounts/password_reset/done/", {"*": 200}),
    "password_reset_confirm": ("/accounts/reset/MQ/bad-token/", {"*": 200}),
    "password_reset_complete": ("/accounts/reset/done/", {"*": 200}),
    "mfa_overview": ("/accounts/mfa/", {"anonymous": LOGIN, "*": 200}),
    "mfa_setup": ("/accounts/mfa/setup", {"anonymous": LOGIN, "supervisor": 302, "other_supervisor": 302,
                                          "admin_user": 302, "*": 200}),
    "mfa_verify": ("/accounts/mfa/verify", {"anonymous": LOGIN, "supervisor": 302, "other_supervisor": 302,
                                            "admin_user": 302, "*": 200}),
    "mfa_recovery_codes": ("/accounts/mfa/recovery-codes", {"anonymous": LOGIN, "*": 405}),
    "mfa_remove": ("/accounts/mfa/remove", {"anonymous": LOGIN, "*": 405}),
    "home": ("/", {"anonymous": LOGIN, "*": 200}),
    "healthz": ("/healthz", {"*": 200}),
    "admin:index": ("/admin/", {"admin_user": 200, "*": 302}),
    "client_list": ("/clients/", {"anonymous": LOGIN, "*": 200}),
    "client_new": ("/clients/new", {"anonymous": LOGIN, "therapist": 200, "other_therapist": 200, "*": 302}),
    "client_detail": ("/clients/{code}/", {"anonymous": LOGIN, "therapist": 200, "supervisor": 200, "*": 404}),
    "client_edit": ("/clients/{code}/edit", {"anonymous": LOGIN, "therapist": 200, "*": 404}),
    "client_delete": ("/clients/{code}/delete", {"anonymous": LOGIN, "therapist": 200, "*": 404}),
    # Deleted records: the therapist who may edit the client restores them.
    "deletion_list": ("/deletions/", {"anonymous": LOGIN, "therapist": 200, "other_therapist": 200, "*": 404}),
    "deletion_restore": ("/deletions/{deletion}/restore", {"anonymous": LOGIN, "therapist": 200, "*": 404}),
    "session_new": ("/clients/{code}/sessions/new", {"anonymous": LOGIN, "therapist": 200, "*": 404}),
    "client_access_log": ("/clients/{code}/access-log", {"anonymous": LOGIN, "therapist": 200, "supervisor": 200,
                                                         "admin_user": 200, "*": 404}),
    "session_detail": ("/sessions/{session}/", {"anonymous": LOGIN, "therapist": 200, "supervisor": 200, "*": 404}),
    "session_status": ("/sessions/{session}/status", {"anonymous": LOGIN, "*": 405}),
    "session_no_rupture": ("/sessions/{session}/no-rupture", {"anonymous": LOGIN, "*": 405}),
    "session_brief": ("/sessions/{session}/brief", {"anonymous": LOGIN, "therapist": 200, "supervisor": 200, "*": 404}),
    "session_delete": ("/sessions/{session}/delete", {"anonymous": LOGIN, "therapist": 200, "*": 404}),
    "rupture_new": ("/sessions/{session}/ruptures/new", {"anonymous": LOGIN, "therapist": 200, "*": 404}),
    "rupture_detail": ("/ruptures/{rupture}/", {"anonymous": LOGIN, "therapist": 200, "supervisor": 200, "*": 404}),
    "rupture_edit": ("/ruptures/{rupture}/edit", {"anonymous": LOGIN, "therapist": 200, "*": 404}),
    "attempt_new": ("/ruptures/{rupture}/attempts/new", {"anonymous": LOGIN, "therapist": 200, "*": 404}),
    "rupture_status": ("/ruptures/{rupture}/status", {"anonymous": LOGIN, "*": 405}),
    "rupture_delete": ("/ruptures/{rupture}/delete", {"anonymous": LOGIN, "therapist": 200, "*": 404}),
    # Supervision: supervisors see their supervisees; admins the clinic, without records.
    "supervision_dashboard": ("/supervision/", {"anonymous": LOGIN, "supervisor": 200, "other_supervisor": 200,
                                                "admin_user": 200, "*": 404}),
    "supervision_caseload": ("/supervision/dlee/", {"anonymous": LOGIN, "supervisor": 200, "*": 404}),
    "supervision_discuss": ("/supervision/ruptures/{rupture}/discuss", {"anonymous": LOGIN, "supervisor": 200,
                                                                        "*": 404}),
    # Caseload exchange: the clinic admin's alone.
    "exchange": ("/exchange/", {"anonymous": LOGIN, "admin_user": 200, "*": 404}),
    "exchange_upload_new": ("/exchange/uploads/", {"anonymous": LOGIN, "*": 405}),
    "exchange_upload": ("/exchange/uploads/{upload}/", {"anonymous": LOGIN, "admin_user": 200, "*": 404}),
    "exchange_upload_report": ("/exchange/uploads/{upload}/report.txt",
                               {"anonymous": LOGIN, "admin_user": 200, "*": 404}),
    "exchange_upload_apply": ("/exchange/uploads/{upload}/apply", {"anonymous": LOGIN, "*": 405}),
    "exchange_upload_discard": ("/exchange/uploads/{upload}/discard", {"anonymous": LOGIN, "*": 405}),
    "exchange_export": ("/exchange/export", {"anonymous": LOGIN, "*": 405}),
}


def url_names(patterns=None, namespace=None):
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                yield "admin:index"  # the admin site checks its own permissions: one row for all of it
                continue
            yield from url_names(entry.url_patterns, entry.namespace or namespace)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}:{entry.name}" if namespace else entry.name


def test_it_has_a_row_for_every_url_pattern():
    assert set(url_names()) == set(MATRIX)


@pytest.fixture
def signed_in(request, client, mfa_enforced):
    """A test client signed in as a persona, with a verified second factor where required."""

    def as_persona(persona):
        if persona == "anonymous":
            return client
        user = request.getfixturevalue(persona)
        login(client, user)
        if user.role in ("supervisor", "admin"):
            device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
            session = client.session
            session[DEVICE_ID_SESSION_KEY] = device.persistent_id
            session[mfa.ENROLLED] = True
            session.save()
        return client

    return as_persona


@pytest.fixture
def records(rupture, admin_user):
    SweepHeartbeat.objects.create(finished_at=timezone.now())  # a healthy system: /healthz says 200
    make_attempt(rupture)
    upload = CaseloadUpload.objects.create(
        uploaded_by=admin_user, filename="clinic.json", size=2, sha256="0" * 64, content=b"{}",
        status=UploadStatus.REFUSED, problems=[["format", "expected caseload"]], counts={},
    )
    mistake = make_session(rupture.session.client, days_ago=3)
    deletion = mistake.soft_delete(by=rupture.created_by, reason="Entered twice.")
    return {"code": rupture.session.client.code, "session": rupture.session_id, "rupture": rupture.pk,
            "upload": upload.pk, "deletion": deletion.pk}


@pytest.mark.parametrize("persona", PERSONAS)
def test_it_answers_each_persona_as_the_matrix_says(persona, signed_in, records, other_supervisor):
    client = signed_in(persona)
    got, expected = {}, {}
    for name, (template, statuses) in MATRIX.items():
        got[name] = client.get(template.format(**records)).status_code
        expected[name] = statuses.get(persona, statuses["*"])
    assert got == expected


WRITES = [
    ("/clients/{code}/edit", {"name": "Renamed", "status": "paused", "started_on": "2026-01-01"}),
    ("/clients/{code}/sessions/new", {"starts_at": "2030-01-01T10:00", "duration_minutes": "50",
                                      "status": "scheduled"}),
    ("/sessions/{session}/status", {"status": "cancelled"}),
    ("/sessions/{session}/no-rupture", {}),
    ("/sessions/{session}/delete", {"reason": "x"}),
    ("/sessions/{session}/ruptures/new", {"kind": "withdrawal", "markers": ["denial"], "intensity": "2",
                                          "actor": "client", "source": "unknown"}),
    ("/ruptures/{rupture}/edit", {"kind": "confrontation", "markers": ["defends_self"], "intensity": "2",
                                  "actor": "client", "source": "unknown", "version": "1"}),
    ("/ruptures/{rupture}/status", {"repair_status": "resolved", "version": "1"}),
    ("/ruptures/{rupture}/attempts/new", {"session": "{session}", "strategy": "invite_discussion",
                                          "outcome": "resolved"}),
    ("/ruptures/{rupture}/delete", {"reason": "x"}),
    ("/clients/{code}/delete", {"reason": "x"}),
    ("/deletions/{deletion}/restore", {"reason": "x"}),
]


@pytest.mark.parametrize("persona", ["other_therapist", "supervisor", "other_supervisor", "admin_user"])
def test_it_lets_no_one_but_the_therapist_write(persona, signed_in, records, rupture, other_supervisor):
    client = signed_in(persona)
    before = RuptureEvent.all_objects.values().get(pk=rupture.pk)
    for template, data in WRITES:
        data = {k: v.format(**records) if isinstance(v, str) else v for k, v in data.items()}
        assert client.post(template.format(**records), data).status_code == 404, template
    assert RuptureEvent.all_objects.values().get(pk=rupture.pk) == before
    assert RuptureEvent.all_objects.count() == 1


@pytest.mark.parametrize("persona", ["other_therapist", "other_supervisor", "admin_user"])
def test_it_hides_htmx_fragments_of_others_records(persona, signed_in, records):
    client = signed_in(persona)
    url = "/sessions/{session}/ruptures/new".format(**records)
    for target in ("markers", "suggestions"):
        response = client.get(url, {"kind": "withdrawal"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET=target)
        assert response.status_code == 404
    fragment = client.get("/clients/", {"q": records["code"]}, HTTP_HX_REQUEST="true")
    assert records["code"] not in fragment.content.decode()


def test_it_answers_404_for_records_that_do_not_exist(signed_in, records):
    client = signed_in("therapist")
    for url in ("/clients/C-9999/", "/sessions/999999/", "/ruptures/999999/", "/ruptures/999999/edit"):
        assert client.get(url).status_code == 404
