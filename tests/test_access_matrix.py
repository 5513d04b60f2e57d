"""Every URL pattern, every kind of person: the status each gets is written down here.

A URL pattern with no row fails `test_it_has_a_row_for_every_url_pattern`, so a new
page cannot skip the question of who may see it.
"""

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import mfa
from accounts.models import SupervisionLink, User
from checks.models import AllianceCheck, ClientCheckLink
from checks.services import make_client_link
from exchange.models import CaseloadUpload, UploadStatus
from reminders.models import SweepHeartbeat
from reports.models import ReportJob
from ruptures.models import RuptureEvent
from sessions.models import Client
from tests.conftest import login
from tests.factories import PASSWORD, make_attempt, make_session

PERSONAS = ["anonymous", "therapist", "other_therapist", "supervisor", "other_supervisor", "admin_user",
            "superuser"]

# name: (url template, {persona: status}); "*" is the default for personas not named,
# except that a superuser (an operator, with the admin role) gets what admin_user gets
# unless named.
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
    # The admin site. Signed in without it, people are sent to its sign-in, which is a 404
    # to them; clinic admins get people, supervision and client assignment; history,
    # devices, sessions and sign-in attempts are not in it for anyone.
    "admin:index": ("/admin/", {"admin_user": 200, "*": 302}),
    "admin:login": ("/admin/login/", {"anonymous": LOGIN, "admin_user": 302, "*": 404}),
    "admin:logout": ("/admin/logout/", {"admin_user": 405, "*": 302}),
    "admin:password_change": ("/admin/password_change/", {"admin_user": 200, "*": 302}),
    "admin:password_change_done": ("/admin/password_change/done/", {"admin_user": 200, "*": 302}),
    "admin:autocomplete": ("/admin/autocomplete/", {"admin_user": 403, "*": 302}),
    "admin:jsi18n": ("/admin/jsi18n/", {"admin_user": 200, "*": 302}),
    "admin:view_on_site": ("/admin/r/{client_type}/{client_pk}/", {"admin_user": 302, "*": 302}),
    "admin:app_list": ("/admin/accounts/", {"admin_user": 200, "*": 302}),
    "admin:auth_group_changelist": ("/admin/auth/group/", {"admin_user": 403, "superuser": 200, "*": 302}),
    "admin:auth_group_add": ("/admin/auth/group/add/", {"admin_user": 403, "superuser": 200, "*": 302}),
    "admin:auth_group_change": ("/admin/auth/group/{group}/change/", {"admin_user": 403, "superuser": 200,
                                                                      "*": 302}),
    "admin:auth_group_history": ("/admin/auth/group/{group}/history/", {"admin_user": 403, "superuser": 200,
                                                                        "*": 302}),
    "admin:auth_group_delete": ("/admin/auth/group/{group}/delete/", {"admin_user": 403, "superuser": 200,
                                                                      "*": 302}),
    "admin:accounts_user_changelist": ("/admin/accounts/user/", {"admin_user": 200, "*": 302}),
    "admin:accounts_user_add": ("/admin/accounts/user/add/", {"admin_user": 200, "*": 302}),
    "admin:accounts_user_change": ("/admin/accounts/user/{user}/change/", {"admin_user": 200, "*": 302}),
    "admin:accounts_user_history": ("/admin/accounts/user/{user}/history/", {"admin_user": 200, "*": 302}),
    "admin:accounts_user_delete": ("/admin/accounts/user/{user}/delete/", {"admin_user": 403, "superuser": 200,
                                                                          "*": 302}),
    "admin:accounts_supervisionlink_changelist": ("/admin/accounts/supervisionlink/", {"admin_user": 200, "*": 302}),
    "admin:accounts_supervisionlink_add": ("/admin/accounts/supervisionlink/add/", {"admin_user": 200, "*": 302}),
    "admin:accounts_supervisionlink_change": ("/admin/accounts/supervisionlink/{link}/change/",
                                              {"admin_user": 200, "*": 302}),
    "admin:accounts_supervisionlink_history": ("/admin/accounts/supervisionlink/{link}/history/",
                                               {"admin_user": 200, "*": 302}),
    "admin:accounts_supervisionlink_delete": ("/admin/accounts/supervisionlink/{link}/delete/",
                                              {"admin_user": 200, "*": 302}),
    "admin:therapy_sessions_client_changelist": ("/admin/therapy_sessions/client/", {"admin_user": 200, "*": 302}),
    "admin:therapy_sessions_client_add": ("/admin/therapy_sessions/client/add/", {"admin_user": 403, "*": 302}),
    "admin:therapy_sessions_client_change": ("/admin/therapy_sessions/client/{client_pk}/change/",
                                             {"admin_user": 200, "*": 302}),
    "admin:therapy_sessions_client_history": ("/admin/therapy_sessions/client/{client_pk}/history/",
                                              {"admin_user": 200, "*": 302}),
    "admin:therapy_sessions_client_delete": ("/admin/therapy_sessions/client/{client_pk}/delete/",
                                             {"admin_user": 403, "*": 302}),
    "client_list": ("/clients/", {"anonymous": LOGIN, "*": 200}),
    "client_new": ("/clients/new", {"anonymous": LOGIN, "therapist": 200, "other_therapist": 200, "*": 302}),
    "client_detail": ("/clients/{code}/", {"anonymous": LOGIN, "therapist": 200, "supervisor": 200, "*": 404}),
    "client_edit": ("/clients/{code}/edit", {"anonymous": LOGIN, "therapist": 200, "*": 404}),
    "client_discharge": ("/clients/{code}/discharge", {"anonymous": LOGIN, "therapist": 200, "*": 404}),
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
    "session_check": ("/sessions/{session}/check", {"anonymous": LOGIN, "*": 405}),
    "session_ask_client": ("/sessions/{session}/ask-client", {"anonymous": LOGIN, "*": 405}),
    # The client's one-time link: no sign-in for anyone, the same page for everyone.
    "client_check": ("/c/{token}", {"*": 200}),
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
    # An upload is its uploader's alone, even to an operator.
    "exchange_upload": ("/exchange/uploads/{upload}/", {"anonymous": LOGIN, "admin_user": 200, "superuser": 404,
                                                        "*": 404}),
    "exchange_upload_report": ("/exchange/uploads/{upload}/report.txt",
                               {"anonymous": LOGIN, "admin_user": 200, "superuser": 404, "*": 404}),
    "exchange_upload_apply": ("/exchange/uploads/{upload}/apply", {"anonymous": LOGIN, "*": 405}),
    "exchange_upload_discard": ("/exchange/uploads/{upload}/discard", {"anonymous": LOGIN, "*": 405}),
    "exchange_export": ("/exchange/export", {"anonymous": LOGIN, "*": 405}),
    # Alliance reports: admins (the clinic) and supervisors (their supervisees); a made PDF
    # is its requester's alone.
    "report_alliance": ("/reports/alliance/", {"anonymous": LOGIN, "supervisor": 200, "other_supervisor": 200,
                                               "admin_user": 200, "*": 404}),
    "report_alliance_csv": ("/reports/alliance/report.csv", {"anonymous": LOGIN, "supervisor": 200,
                                                             "other_supervisor": 200, "admin_user": 200, "*": 404}),
    "report_alliance_xlsx": ("/reports/alliance/report.xlsx", {"anonymous": LOGIN, "supervisor": 200,
                                                               "other_supervisor": 200, "admin_user": 200, "*": 404}),
    "report_alliance_pdf": ("/reports/alliance/pdf", {"anonymous": LOGIN, "*": 405}),
    "report_research": ("/reports/research/", {"anonymous": LOGIN, "admin_user": 200, "*": 404}),
    # Another admin, a superuser included, never sees someone else's made report.
    "report_job": ("/reports/jobs/{job}/", {"anonymous": LOGIN, "admin_user": 200, "superuser": 404, "*": 404}),
    "report_job_download": ("/reports/jobs/{job}/download", {"anonymous": LOGIN, "admin_user": 200,
                                                             "superuser": 404, "*": 404}),
}


def url_names(patterns=None, namespace=None):
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
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
        if mfa.is_required(user):
            device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
            session = client.session
            session[DEVICE_ID_SESSION_KEY] = device.persistent_id
            session[mfa.ENROLLED] = True
            session.save()
        return client

    return as_persona


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root", "root@clinic.example", PASSWORD)


@pytest.fixture
def records(rupture, admin_user, supervisor, shipped_instruments):
    SweepHeartbeat.objects.create(finished_at=timezone.now())  # a healthy system: /healthz says 200
    make_attempt(rupture)
    upload = CaseloadUpload.objects.create(
        uploaded_by=admin_user, filename="clinic.json", size=2, sha256="0" * 64, content=b"{}",
        status=UploadStatus.REFUSED, problems=[["format", "expected caseload"]], counts={},
    )
    job = ReportJob.objects.create(
        requested_by=admin_user, filters={"from": "2026-11-01", "to": "2026-11-30"}, as_of=timezone.now(),
        status="done", content=b"%PDF-1.4",
    )
    client = rupture.session.client
    _, token = make_client_link(session=rupture.session, by=rupture.session.therapist)
    mistake = make_session(client, days_ago=3)
    deletion = mistake.soft_delete(by=rupture.created_by, reason="Entered twice.")
    return {"code": client.code, "session": rupture.session_id, "rupture": rupture.pk, "upload": upload.pk,
            "client_pk": client.pk, "client_type": ContentType.objects.get_for_model(Client).pk,
            "user": rupture.session.therapist_id, "group": Group.objects.get(name="therapist").pk,
            "link": SupervisionLink.objects.get(supervisor=supervisor).pk, "job": job.pk, "token": token,
            "deletion": deletion.pk}


@pytest.mark.parametrize("persona", PERSONAS)
def test_it_answers_each_persona_as_the_matrix_says(persona, signed_in, records, other_supervisor):
    client = signed_in(persona)
    got, expected = {}, {}
    for name, (template, statuses) in MATRIX.items():
        got[name] = client.get(template.format(**records)).status_code
        fallback = statuses.get("admin_user", statuses["*"]) if persona == "superuser" else statuses["*"]
        expected[name] = statuses.get(persona, fallback)
    assert got == expected


WRITES = [
    ("/clients/{code}/edit", {"name": "Renamed", "status": "paused", "started_on": "2026-01-01"}),
    ("/clients/{code}/discharge", {"ending": "dropout"}),
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
    ("/sessions/{session}/check", {"tension": "no", "together": "4"}),
    ("/sessions/{session}/ask-client", {}),
]


@pytest.mark.parametrize("persona", ["other_therapist", "supervisor", "other_supervisor", "admin_user", "superuser"])
def test_it_lets_no_one_but_the_therapist_write(persona, signed_in, records, rupture, other_supervisor):
    client = signed_in(persona)
    before = RuptureEvent.all_objects.values().get(pk=rupture.pk)
    client_before = type(rupture.session.client).all_objects.values().get(pk=rupture.session.client_id)
    for template, data in WRITES:
        data = {k: v.format(**records) if isinstance(v, str) else v for k, v in data.items()}
        assert client.post(template.format(**records), data).status_code == 404, template
    assert RuptureEvent.all_objects.values().get(pk=rupture.pk) == before
    assert type(rupture.session.client).all_objects.values().get(pk=rupture.session.client_id) == client_before
    assert RuptureEvent.all_objects.count() == 1
    assert not AllianceCheck.all_objects.exists() and ClientCheckLink.all_objects.count() == 1


@pytest.mark.parametrize("persona", ["other_therapist", "other_supervisor", "admin_user", "superuser"])
def test_it_hides_htmx_fragments_of_others_records(persona, signed_in, records):
    client = signed_in(persona)
    url = "/sessions/{session}/ruptures/new".format(**records)
    for target in ("markers", "suggestions", "risk"):
        response = client.get(url, {"kind": "withdrawal"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET=target)
        assert response.status_code == 404
    fragment = client.get("/clients/", {"q": records["code"]}, HTTP_HX_REQUEST="true")
    assert records["code"] not in fragment.content.decode()


def test_it_answers_404_for_records_that_do_not_exist(signed_in, records):
    client = signed_in("therapist")
    for url in ("/clients/C-9999/", "/sessions/999999/", "/ruptures/999999/", "/ruptures/999999/edit"):
        assert client.get(url).status_code == 404
