"""The technical safeguards, each proved: integrity, audit, authentication, sessions, browser."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role
from ruptures.models import RuptureEvent
from tests.factories import PASSWORD, make_attempt, make_rupture, make_user

# --- Integrity: history by triggers, no hard deletes ------------------------------------


def events_of(rupture):
    return RuptureEvent.pgh_event_models["update"].objects.filter(pgh_obj_id=rupture.pk).order_by("pgh_id")


def test_it_keeps_history_of_a_bulk_queryset_update(rupture):
    RuptureEvent.objects.filter(pk=rupture.pk).update(intensity=5, plan="Changed in bulk")
    snapshots = list(events_of(rupture).values_list("pgh_label", "intensity", "plan"))
    assert snapshots == [("insert", 3, "Ask how the letter question landed."), ("update", 5, "Changed in bulk")]


def test_it_keeps_history_of_raw_sql(rupture):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ruptures_ruptureevent SET repair_status = 'resolved' WHERE id = %s", [rupture.pk])
    assert events_of(rupture).last().repair_status == "resolved"


def test_it_refuses_to_change_or_delete_history(rupture):
    for sql in ("UPDATE ruptures_ruptureeventevent SET intensity = 1", "DELETE FROM ruptures_ruptureeventevent"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert events_of(rupture).count() == 1


@pytest.mark.parametrize("table", ["ruptures_ruptureevent", "ruptures_repairattempt",
                                   "therapy_sessions_therapysession", "therapy_sessions_client"])
def test_it_refuses_a_hard_delete_of_clinical_records(rupture, table):
    make_attempt(rupture)  # a DELETE of no rows fires no row trigger
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}")
    with pytest.raises(DatabaseError), transaction.atomic():
        RuptureEvent.objects.filter(pk=rupture.pk).delete()
    assert RuptureEvent.objects.filter(pk=rupture.pk).exists()


def test_it_soft_deletes_a_rupture_with_a_reason(as_therapist, rupture, therapist):
    response = as_therapist.post(f"/ruptures/{rupture.pk}/delete", {"reason": "Logged on the wrong client."})
    assert response.status_code == 302
    assert as_therapist.get(f"/ruptures/{rupture.pk}/").status_code == 404
    kept = RuptureEvent.all_objects.get(pk=rupture.pk)
    assert (kept.deleted_by, kept.deletion_reason) == (therapist, "Logged on the wrong client.")
    assert not RuptureEvent.objects.filter(pk=rupture.pk).exists()


def test_it_refuses_a_deletion_without_a_reason(as_therapist, rupture):
    response = as_therapist.post(f"/ruptures/{rupture.pk}/delete", {"reason": "   "})
    assert response.status_code == 400 and "reason" in response.context["form"].errors
    assert RuptureEvent.objects.filter(pk=rupture.pk).exists()
    with pytest.raises(IntegrityError), transaction.atomic():
        RuptureEvent.objects.filter(pk=rupture.pk).update(deleted_at=timezone.now())


def test_it_hides_a_deleted_sessions_ruptures(as_therapist, rupture):
    as_therapist.post(f"/sessions/{rupture.session_id}/delete", {"reason": "Duplicate entry."})
    assert as_therapist.get(f"/sessions/{rupture.session_id}/").status_code == 404
    assert as_therapist.get(f"/ruptures/{rupture.pk}/").status_code == 404


def test_it_shows_the_change_history_on_the_rupture_page(as_therapist, rupture):
    data = {"kind": "withdrawal", "actor": "client", "markers": ["minimal_response"], "intensity": "4",
            "source": "unknown", "version": 1}
    as_therapist.post(f"/ruptures/{rupture.pk}/edit", data)
    history = as_therapist.get(f"/ruptures/{rupture.pk}/").context["history"]
    assert [e.what for e in history] == ["logged", "changed"]
    assert history[1].by == "Dana Lee"
    assert ("intensity", 3, 4) in history[1].changes


# --- Authentication: throttling, second factor ----------------------------------------------


def sign_in(client, username, password, ip="127.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_it_locks_a_username_and_address_pair_and_says_when_to_try_again(client, therapist):
    for _ in range(4):
        assert sign_in(client, "dlee", "wrong").status_code == 200
    assert sign_in(client, "dlee", "wrong").status_code == 429
    locked = sign_in(client, "dlee", PASSWORD)
    assert locked.status_code == 429
    assert "You can try again after" in locked.content.decode()
    # Another address is not locked: a stranger cannot lock a clinician out everywhere.
    assert sign_in(client, "dlee", PASSWORD, ip="192.0.2.7").status_code == 302


def test_it_lifts_the_lock_after_the_cool_off(client, therapist):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        for _ in range(5):
            sign_in(client, "dlee", "wrong")
        assert sign_in(client, "dlee", PASSWORD).status_code == 429
        traveller.shift(timedelta(minutes=16))
        assert sign_in(client, "dlee", PASSWORD).status_code == 302


def test_it_hashes_passwords_with_argon2(settings, db):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
    user = make_user(Role.THERAPIST)
    assert user.password.startswith("argon2")


def test_it_accepts_a_long_passphrase_and_refuses_a_short_password(as_therapist):
    long_one = "the quiet client returned and we named the silence together " * 3
    ok = as_therapist.post("/accounts/password_change/", {
        "old_password": PASSWORD, "new_password1": long_one, "new_password2": long_one})
    assert ok.status_code == 302
    short = as_therapist.post("/accounts/password_change/", {
        "old_password": long_one, "new_password1": "abc123", "new_password2": "abc123"})
    assert short.status_code == 200 and short.context["form"].errors["new_password2"]


def current_code(device):
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def test_it_makes_a_supervisor_set_up_a_second_factor(client, supervisor, mfa_enforced):
    assert sign_in(client, "mokafor", PASSWORD).status_code == 302
    response = client.get("/clients/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/mfa/setup")
    setup = client.get("/accounts/mfa/setup")
    assert "<svg" in setup.content.decode()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        assert client.post("/accounts/mfa/setup", {"code": "000000"}).status_code == 400
        traveller.shift(timedelta(seconds=5))  # past the throttle a wrong code earns
        device = TOTPDevice.objects.get(user=supervisor)
        codes = client.post("/accounts/mfa/setup", {"code": current_code(device)}).context["codes"]
    assert len(codes) == 10
    assert client.get("/clients/").status_code == 200

    # Next sign-in: the code is asked for; a recovery code works, once.
    client.post("/accounts/logout/")
    sign_in(client, "mokafor", PASSWORD)
    assert client.get("/clients/")["Location"].startswith("/accounts/mfa/verify")
    assert client.post("/accounts/mfa/verify", {"code": codes[0]}).status_code == 302
    assert client.get("/clients/").status_code == 200
    client.post("/accounts/logout/")
    sign_in(client, "mokafor", PASSWORD)
    assert client.post("/accounts/mfa/verify", {"code": codes[0]}).status_code == 400


def test_it_says_wait_rather_than_wrong_while_codes_are_throttled(client, supervisor, mfa_enforced):
    sign_in(client, "mokafor", PASSWORD)
    setup = client.get("/accounts/mfa/setup")
    # The QR code has a name a screen reader announces.
    assert 'role="img" aria-label="QR code for your authenticator app.' in setup.content.decode()
    device = TOTPDevice.objects.get(user=supervisor)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        client.post("/accounts/mfa/setup", {"code": "000000"})  # a 1-second pause follows
        traveller.shift(timedelta(seconds=0.5))
        client.post("/accounts/mfa/setup", {"code": "000000"})
        traveller.shift(timedelta(seconds=0.25))
        device.refresh_from_db()
        assert device.throttling_failure_count == 1  # the second wrong code was not even tried
        right_too_soon = client.post("/accounts/mfa/setup", {"code": current_code(device)})
        assert right_too_soon.status_code == 400
        html = right_too_soon.content.decode()
        assert "Too many wrong codes: wait 1 second, then enter the newest code" in html
        assert "did not match" not in html
        traveller.shift(timedelta(seconds=1))
        assert "codes" in client.post("/accounts/mfa/setup", {"code": current_code(device)}).context

    client.post("/accounts/logout/")
    sign_in(client, "mokafor", PASSWORD)
    # A minute on: the code that confirmed the app was used, and a used code never works again.
    with time_machine.travel(timezone.now() + timedelta(minutes=1), tick=False) as traveller:
        for _ in range(3):
            client.post("/accounts/mfa/verify", {"code": "000000"})
            traveller.shift(timedelta(seconds=0.5))
        response = client.post("/accounts/mfa/verify", {"code": current_code(device)})
        assert response.status_code == 400
        assert "Too many wrong codes: wait" in response.content.decode()
        assert "is not valid" not in response.content.decode()
        traveller.shift(timedelta(seconds=8))
        assert client.post("/accounts/mfa/verify", {"code": current_code(device)}).status_code == 302


def test_it_offers_recovery_codes_as_a_file_and_a_refresh_does_not_replace_them(client, therapist, mfa_enforced):
    from urllib.parse import unquote

    sign_in(client, "dlee", PASSWORD)
    client.get("/accounts/mfa/setup")
    device = TOTPDevice.objects.get(user=therapist)
    codes = client.post("/accounts/mfa/setup", {"code": current_code(device)}).context["codes"]
    batch = client.get("/accounts/mfa/").context["recovery_batch"]

    fresh = client.post("/accounts/mfa/recovery-codes", {"replaces": batch})
    new_codes = fresh.context["codes"]
    assert set(new_codes).isdisjoint(codes)
    download = fresh.context["download"]
    assert download.startswith("data:text/plain") and all(code in unquote(download) for code in new_codes)
    assert 'download="rupture-log-recovery-codes.txt"' in fresh.content.decode()

    # The browser's refresh sends the same form again: the codes just shown stay valid.
    again = client.post("/accounts/mfa/recovery-codes", {"replaces": batch}, follow=True)
    assert "already replaced" in again.content.decode()
    client.post("/accounts/logout/")
    sign_in(client, "dlee", PASSWORD)
    assert client.post("/accounts/mfa/verify", {"code": new_codes[0]}).status_code == 302


def test_it_makes_an_admin_set_up_a_second_factor_even_for_the_admin_site(client, admin_user, mfa_enforced):
    sign_in(client, "admin", PASSWORD)
    assert client.get("/admin/")["Location"].startswith("/accounts/mfa/setup")


def test_it_offers_a_second_factor_to_therapists_without_forcing_it(client, therapist, mfa_enforced):
    sign_in(client, "dlee", PASSWORD)
    assert client.get("/clients/").status_code == 200
    assert "Set it up" in client.get("/accounts/mfa/").content.decode()


def test_it_sends_an_htmx_request_needing_a_second_factor_to_a_whole_page(client, supervisor, mfa_enforced):
    sign_in(client, "mokafor", PASSWORD)
    response = client.get("/clients/", HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"].startswith("/accounts/mfa/setup")


# --- Sessions: idle and absolute limits, logout -----------------------------------------------


def test_it_ends_a_session_after_15_idle_minutes(client, therapist):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        sign_in(client, "dlee", PASSWORD)
        traveller.shift(timedelta(minutes=14))
        assert client.get("/").status_code == 200
        traveller.shift(timedelta(minutes=14))  # still within 15 of the last request
        assert client.get("/").status_code == 200
        traveller.shift(timedelta(minutes=16))
        assert client.get("/")["Location"].startswith("/accounts/login/")


def test_it_ends_a_session_12_hours_after_sign_in_however_active(client, therapist):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        sign_in(client, "dlee", PASSWORD)
        for _ in range(71):  # every 10 minutes for 11 hours 50 minutes
            traveller.shift(timedelta(minutes=10))
            assert client.get("/clients/").status_code == 200
        traveller.shift(timedelta(minutes=11))
        assert client.get("/clients/")["Location"].startswith("/accounts/login/")


def test_it_sends_an_expired_htmx_request_to_the_login_page_as_a_whole_page(client, therapist):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        sign_in(client, "dlee", PASSWORD)
        traveller.shift(timedelta(minutes=20))
        response = client.get("/clients/?q=C", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/clients/")
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=/clients/"
    assert response.content == b""


def test_it_invalidates_the_session_on_the_server_at_logout(client, therapist):
    sign_in(client, "dlee", PASSWORD)
    stolen = client.cookies["sessionid"].value
    client.post("/accounts/logout/")
    client.cookies["sessionid"] = stolen
    assert client.get("/")["Location"].startswith("/accounts/login/")


def test_it_does_not_log_out_on_a_get(as_therapist):
    assert as_therapist.get("/accounts/logout/").status_code == 405


# --- The browser: headers and CSP ----------------------------------------------------------------


def test_it_sends_a_strict_content_security_policy(as_therapist):
    policy = as_therapist.get("/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_it_sends_the_protective_headers_and_no_store_on_phi_pages(as_therapist, rupture):
    response = as_therapist.get(f"/ruptures/{rupture.pk}/")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert "no-store" in response["Cache-Control"]


def test_it_has_no_inline_script_or_style_in_its_pages(as_therapist, rupture):
    html = as_therapist.get(f"/ruptures/{rupture.pk}/").content.decode()
    assert "<style" not in html and " style=" not in html
    assert all("src=" in tag for tag in html.split("<script")[1:])
    assert '"allowEval": false' in html and '"historyCacheSize": 0' in html


def test_it_passes_the_deployment_checks_with_production_settings():
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env |= {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "k" * 30 + "-production-like-secret-0123456789",
           "DJANGO_ALLOWED_HOSTS": "rupture-log.example.org", "DJANGO_SSL_REDIRECT": "1",
            "DJANGO_SITE_URL": "https://rupture-log.example.org",
            "RISK_PROTOCOL_URL": "https://intranet.example.org/risk-protocol"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_keeps_phi_out_of_the_urls_of_the_rupture_form(as_therapist, rupture):
    html = as_therapist.get(f"/sessions/{rupture.session_id}/ruptures/new").content.decode()
    # The live requests send slugs only, never the free-text fields.
    include = html.split('id="suggestions"')[1].split("hx-include=")[1].split(">")[0]
    assert "noticed" not in include and "plan" not in include and "hypothesis" not in include


def test_it_writes_no_clinical_text_into_an_access_event(as_supervisor, rupture):
    from audit.models import AccessEvent

    as_supervisor.get(f"/ruptures/{rupture.pk}/")
    event = AccessEvent.objects.get()
    assert "letter" not in str(event.detail) and event.key == rupture.key
    assert make_rupture  # the factory stays importable for the fuzz tests


def test_it_titles_the_rupture_page_without_clinical_text(as_therapist, rupture):
    html = as_therapist.get(f"/ruptures/{rupture.pk}/").content.decode()
    title = html.split("<title>")[1].split("</title>")[0]
    assert title.strip() == f"Rupture · {rupture.session.client.code} · rupture-log"


def test_it_lets_supervisors_and_admins_review_who_opened_a_record(client, rupture, supervisor, admin_user,
                                                                   other_supervisor):
    from tests.conftest import login

    code = rupture.session.client.code
    login(client, supervisor)
    client.get(f"/clients/{code}/")
    client.get(f"/ruptures/{rupture.pk}/")
    login(client, admin_user)
    assert client.get(f"/clients/{code}/").status_code == 404  # the record stays closed to admins
    log = client.get(f"/clients/{code}/access-log")
    rows = [(str(e.user), e.action, e.what) for e in log.context["page"].object_list]
    assert rows == [("admin", "view", "access-log"), ("M. Okafor", "view", "rupture"), ("M. Okafor", "view", "client")]
    assert "letter" not in log.content.decode()  # no clinical text in the log
    login(client, other_supervisor)
    assert client.get(f"/clients/{code}/access-log").status_code == 404


def test_it_names_records_in_the_access_log_as_the_pages_do(client, rupture, supervisor, admin_user):
    from tests.conftest import login

    code = rupture.session.client.code
    login(client, supervisor)
    client.get(f"/ruptures/{rupture.pk}/")
    client.get(f"/sessions/{rupture.session_id}/")
    log = client.get(f"/clients/{code}/access-log").content.decode()
    assert f'rupture: <a href="/ruptures/{rupture.pk}/">Withdrawal (moves away), intensity 3, session of' in log
    assert f'<a href="/sessions/{rupture.session_id}/">session of' in log
    assert rupture.key not in log
    # An admin reads no clinical records: the key, which the rupture's page also shows.
    login(client, admin_user)
    admin_log = client.get(f"/clients/{code}/access-log").content.decode()
    assert f"(record key {rupture.key})" in admin_log and "Withdrawal" not in admin_log
    login(client, supervisor)
    assert f"Record key {rupture.key}." in client.get(f"/ruptures/{rupture.pk}/").content.decode()


def test_it_says_what_is_being_deleted(as_therapist, rupture):
    from tests.factories import make_session

    page = as_therapist.get(f"/ruptures/{rupture.pk}/delete").content.decode()
    code = rupture.session.client.code
    assert f"Withdrawal (moves away) rupture, intensity 3, unaddressed: {code}, session of" in page
    session = make_session(rupture.session.client, days_ago=3)
    assert ", with" not in as_therapist.get(f"/sessions/{session.pk}/delete").content.decode().split("<h1>")[1]
    with_rupture = as_therapist.get(f"/sessions/{rupture.session_id}/delete").content.decode()
    assert f"{rupture.session.client.code}: session of" in with_rupture and ", with 1 rupture<" in with_rupture


def test_it_answers_a_stale_form_with_a_plain_page_and_saves_nothing(therapist, rupture):
    from django.test import Client

    from tests.conftest import login

    browser = login(Client(enforce_csrf_checks=True), therapist)
    response = browser.post(f"/ruptures/{rupture.pk}/status", {"repair_status": "resolved", "version": 1})
    assert response.status_code == 403 and "Please try again" in response.content.decode()
    rupture.refresh_from_db()
    assert rupture.repair_status == "unaddressed"


def test_it_shows_its_own_not_found_page(as_therapist):
    response = as_therapist.get("/ruptures/999999/")
    assert response.status_code == 404 and "nothing you have access to" in response.content.decode()


def test_it_keeps_recovery_codes_only_as_hashes(therapist):
    from accounts import mfa
    from accounts.models import RecoveryCodes

    codes = mfa.new_recovery_codes(therapist)
    stored = RecoveryCodes.objects.get(user=therapist)
    assert len(stored.hashes) == 10 and not set(codes) & set(stored.hashes)
    assert not any(code in str(stored.hashes) for code in codes)
    assert stored.verify_token(codes[3]) and not stored.verify_token(codes[3])
    assert mfa.remaining_recovery_codes(therapist) == 9
