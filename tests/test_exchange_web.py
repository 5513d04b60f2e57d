from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client as HttpClient
from django.utils import timezone

from accounts.models import Role
from audit.log import record
from audit.models import AccessEvent
from exchange import forms, services
from exchange.exporter import pseudonym
from exchange.models import CaseloadUpload, UploadStatus
from ruptures.models import RuptureEvent
from sessions.models import Client
from tests.conftest import login
from tests.factories import make_client, make_session, make_user
from tests.test_exchange import NOTE, PLAN, as_bytes, caseload, export_text

HOME = "/exchange/"


def upload(client, doc_or_bytes, name="caseload.json"):
    data = doc_or_bytes if isinstance(doc_or_bytes, bytes) else as_bytes(doc_or_bytes)
    return client.post(
        "/exchange/uploads/", {"file": SimpleUploadedFile(name, data, "application/json")}
    )


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


# --- Access -----------------------------------------------------------------------------------

PAGES = [
    ("get", HOME, {}),
    ("post", "/exchange/uploads/", {}),
    ("get", "/exchange/uploads/{pk}/", {}),
    ("get", "/exchange/uploads/{pk}/report.txt", {}),
    ("post", "/exchange/uploads/{pk}/apply", {}),
    ("post", "/exchange/uploads/{pk}/discard", {}),
    ("post", "/exchange/export", {"kind": "without_free_text"}),
]


@pytest.fixture
def pending(admin_user):
    """A checked upload of the example file, waiting to be applied."""
    data = as_bytes(caseload())
    return CaseloadUpload.objects.create(
        uploaded_by=admin_user,
        filename="c.json",
        size=len(data),
        sha256="0" * 64,
        content=data,
        status=UploadStatus.CHECKED,
    )


@pytest.mark.parametrize("persona", ["as_therapist", "as_supervisor"])
@pytest.mark.parametrize(("method", "url", "data"), PAGES)
def test_it_answers_404_to_anyone_but_a_clinic_admin(request, persona, method, url, data, pending):
    client = request.getfixturevalue(persona)
    response = getattr(client, method)(url.format(pk=pending.pk), data)
    assert response.status_code == 404
    pending.refresh_from_db()
    assert pending.status == UploadStatus.CHECKED and not Client.objects.exists()
    assert not AccessEvent.objects.exists()


@pytest.mark.parametrize(("method", "url", "data"), PAGES)
def test_it_sends_anonymous_visitors_to_sign_in(client, method, url, data, pending):
    response = getattr(client, method)(url.format(pk=pending.pk), data)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(("method", "url", "data"), PAGES[2:6])
def test_it_keeps_an_upload_to_the_admin_who_made_it(client, method, url, data, pending):
    login(client, make_user(Role.ADMIN, username="admin2"))
    assert getattr(client, method)(url.format(pk=pending.pk), data).status_code == 404
    pending.refresh_from_db()
    assert pending.status == UploadStatus.CHECKED


def test_it_shows_the_exchange_in_the_admins_navigation_only(as_admin, client, therapist):
    assert b'href="/exchange/"' in as_admin.get("/").content
    login(client, therapist)
    assert b'href="/exchange/"' not in client.get("/").content


def test_it_shows_the_exchange_page_in_few_queries(
    as_admin, admin_user, django_assert_max_num_queries
):
    for n in range(15):
        CaseloadUpload.objects.create(
            uploaded_by=admin_user,
            filename=f"{n}.json",
            size=10,
            sha256="0" * 64,
            status=UploadStatus.REFUSED,
        )
    # Session, user, uploads, and the sliding session's save (three).
    with django_assert_max_num_queries(6):
        response = as_admin.get(HOME)
    assert response.status_code == 200
    assert response.content.count(b"/exchange/uploads/") == 1 + 10  # the form, ten recent uploads


# --- Upload, report, apply --------------------------------------------------------------------


def test_it_checks_an_upload_and_applies_nothing_yet(as_admin, admin_user):
    response = upload(as_admin, caseload())
    made = CaseloadUpload.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/exchange/uploads/{made.pk}/"
    assert made.status == UploadStatus.CHECKED and made.uploaded_by == admin_user
    assert made.filename == "caseload.json" and bytes(made.content) == as_bytes(caseload())
    assert made.counts["sessions"] == {"created": 4, "updated": 0, "unchanged": 0}
    assert not Client.objects.exists()

    page = as_admin.get(response["Location"])
    assert b"What applying the file will do" in page.content
    labels = ["People", "Supervision links", "Clients", "Sessions", "Ruptures", "Repair attempts"]
    positions = [page.content.index(f'<th scope="row">{label}</th>'.encode()) for label in labels]
    assert positions == sorted(positions)
    assert b"Apply this file" in page.content
    assert NOTE.encode() not in page.content  # the report shows counts, not clinical text


def test_it_offers_no_apply_for_a_file_that_changes_nothing(as_admin):
    from tests.test_exchange import import_doc

    import_doc(caseload())
    response = upload(as_admin, caseload())

    made = CaseloadUpload.objects.get()
    assert made.status == UploadStatus.CHECKED and made.changes_nothing and not made.can_apply
    page = as_admin.get(response["Location"]).content.decode()
    assert "Nothing to apply" in page
    assert "Apply this file" not in page
    assert f'action="/exchange/uploads/{made.pk}/discard"' in page


def test_it_reports_every_problem_with_its_path_and_keeps_nothing(as_admin):
    doc = caseload()
    doc["ruptures"][0]["markers"][0] = "sulking"
    doc["sessions"][3]["starts_at"] = "2026-11-28T14:30:00"
    response = upload(as_admin, doc)
    made = CaseloadUpload.objects.get()
    assert made.status == UploadStatus.REFUSED and bytes(made.content) == b""
    page = as_admin.get(response["Location"]).content.decode()
    assert "2 problems: nothing was imported" in page
    assert (
        "<code>ruptures[0].markers[0]</code>" in page
        and "unknown marker &quot;sulking&quot;" in page
    )
    assert "<code>sessions[3].starts_at</code>" in page
    assert "Apply this file" not in page
    report = as_admin.get(f"/exchange/uploads/{made.pk}/report.txt")
    assert report["Content-Type"] == "text/plain; charset=utf-8"
    assert report.content.decode().splitlines() == [
        'sessions[3].starts_at: "2026-11-28T14:30:00" has no UTC offset '
        "(write it like 2026-11-20T10:00:00+00:00)",
        'ruptures[0].markers[0]: unknown marker "sulking"',
    ]


def test_it_lists_the_first_problems_on_the_page_and_all_in_the_report(as_admin):
    doc = caseload()
    doc["sessions"] += [
        {
            "id": f"S-x{n}",
            "client": "C-404",
            "therapist": "dlee",
            "starts_at": "2026-11-20T10:00:00+00:00",
            "status": "held",
        }
        for n in range(600)
    ]
    response = upload(as_admin, doc)
    page = as_admin.get(response["Location"]).content.decode()
    assert "600 problems" in page and "… and 100 more" in page
    report = as_admin.get(response["Location"] + "report.txt").content.decode()
    assert len(report.splitlines()) == 600 and report.splitlines()[-1].startswith(
        "sessions[603].client"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "<td><code>$</code></td><td data-label=\"Problem\">not valid JSON: Expecting property name"),
        (
            b'{"format": "csv", "version": 1}',
            "<td><code>format</code></td><td data-label=\"Problem\">expected &quot;caseload&quot;, got &quot;csv&quot;",
        ),
    ],
)
def test_it_reports_a_file_that_is_not_a_caseload(as_admin, data, message):
    response = upload(as_admin, data)
    assert message in as_admin.get(response["Location"]).content.decode()
    assert CaseloadUpload.objects.get().status == UploadStatus.REFUSED


def test_it_applies_a_checked_upload(as_admin, admin_user):
    made = CaseloadUpload.objects.get(
        pk=int(upload(as_admin, caseload())["Location"].split("/")[-2])
    )
    response = as_admin.post(f"/exchange/uploads/{made.pk}/apply")
    assert response.status_code == 302 and response["Location"] == f"/exchange/uploads/{made.pk}/"
    made.refresh_from_db()
    assert made.status == UploadStatus.APPLIED and made.applied_at is not None
    assert bytes(made.content) == b""  # no copy of the clinic's records is kept
    assert RuptureEvent.objects.count() == 3 and Client.objects.count() == 2
    page = as_admin.get(response["Location"]).content.decode()
    assert "The caseload file was imported." in page and "What the import did" in page
    events = list(AccessEvent.objects.order_by("pk"))
    assert [(e.user, e.action, e.what, e.detail["via"], e.detail["outcome"]) for e in events] == [
        (admin_user, "import", "caseload", "web", "checked"),
        (admin_user, "import", "caseload", "web", "applied"),
    ]
    assert events[1].detail["counts"]["attempts"]["created"] == 3


def test_it_applies_an_upload_once(as_admin, pending):
    as_admin.post(f"/exchange/uploads/{pending.pk}/apply")
    response = as_admin.post(f"/exchange/uploads/{pending.pk}/apply", follow=True)
    assert "no longer waiting to be applied" in response.content.decode()
    assert AccessEvent.objects.filter(action="import").count() == 1


def test_it_checks_again_when_applying_and_refuses_what_changed_meanwhile(
    as_admin, pending, therapist
):
    # Since the check, someone gave key S-1 to a session of another client.
    make_session(make_client(therapist, code="C-0100"), key="S-1")
    response = as_admin.post(f"/exchange/uploads/{pending.pk}/apply", follow=True)
    page = response.content.decode()
    assert "The database changed since the file was checked, and now the file has problems." in page
    assert "<code>sessions[0].client</code>" in page
    pending.refresh_from_db()
    assert pending.status == UploadStatus.REFUSED and bytes(pending.content) == b""
    assert not RuptureEvent.objects.exists() and Client.objects.count() == 1


def test_it_discards_an_upload(as_admin, pending):
    response = as_admin.post(f"/exchange/uploads/{pending.pk}/discard", follow=True)
    assert "discarded; nothing was imported" in response.content.decode()
    pending.refresh_from_db()
    assert pending.status == UploadStatus.DISCARDED and bytes(pending.content) == b""
    assert as_admin.post(f"/exchange/uploads/{pending.pk}/apply").status_code == 302
    assert not Client.objects.exists()


def test_it_drops_the_file_of_an_upload_left_waiting_too_long(as_admin, pending):
    CaseloadUpload.objects.filter(pk=pending.pk).update(
        uploaded_at=timezone.now() - timedelta(days=2)
    )
    as_admin.post(f"/exchange/uploads/{pending.pk}/apply")
    assert not Client.objects.exists()
    upload(as_admin, caseload())  # each upload sweeps the stale ones
    pending.refresh_from_db()
    assert pending.status == UploadStatus.DISCARDED and bytes(pending.content) == b""


def test_it_refuses_a_file_over_the_size_limit_with_a_clear_message(as_admin, monkeypatch):
    monkeypatch.setattr(forms, "MAX_UPLOAD_BYTES", 1024)
    response = upload(as_admin, b" " * 5000 + as_bytes(caseload()))
    assert response.status_code == 400
    assert (
        "This file is larger than 1.0\xa0KB, the most the web page takes."
        in response.content.decode()
    )
    assert "import_caseload" in response.content.decode()
    assert not CaseloadUpload.objects.exists() and not AccessEvent.objects.exists()


def test_it_asks_for_a_file_when_none_is_sent(as_admin):
    response = as_admin.post("/exchange/uploads/", {})
    assert response.status_code == 400 and "This field is required." in response.content.decode()


def test_it_checks_the_csrf_token_of_an_upload(admin_user):
    browser = login(HttpClient(enforce_csrf_checks=True), admin_user)
    response = upload(browser, caseload())
    assert response.status_code == 403 and not CaseloadUpload.objects.exists()


# --- Export -------------------------------------------------------------------------------------


@pytest.fixture
def clinic(db):
    from tests.test_exchange import import_doc

    import_doc(caseload())


def test_it_downloads_an_export_without_free_text(as_admin, admin_user, clinic):
    response = as_admin.post("/exchange/export", {"kind": "without_free_text"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith('attachment; filename="caseload-')
    text = body(response).decode()
    assert text == export_text(free_text=False)
    # Admins never read clinical text: not through the export either (issue 10, item 3).
    assert '"free_text": "omitted"' in text
    assert NOTE not in text and PLAN not in text and "Asked how it landed." not in text
    assert "Jo Bloggs" not in text  # a client's name
    assert "Dana Lee" in text and "C-0001" in text  # people and codes stay
    event = AccessEvent.objects.get(action="export")
    assert (event.user, event.what, event.detail["via"], event.detail["pseudonymised"]) == (
        admin_user,
        "caseload",
        "web",
        False,
    )
    assert event.detail["counts"]["ruptures"] == 3


def test_it_downloads_a_pseudonymised_export(as_admin, clinic):
    response = as_admin.post("/exchange/export", {"kind": "pseudonymised"})
    text = body(response).decode()
    assert "-pseudonymised.json" in response["Content-Disposition"]
    assert text == export_text(deidentify=True, free_text=False)
    assert "Dana Lee" not in text and NOTE not in text and pseudonym("user", "dlee") in text
    assert AccessEvent.objects.get(action="export").detail["pseudonymised"] is True


def test_it_refuses_an_unknown_kind_of_export(as_admin):
    response = as_admin.post("/exchange/export", {"kind": "everything"})
    assert response.status_code == 400 and not AccessEvent.objects.exists()


def test_it_limits_how_many_exports_a_person_downloads_an_hour(as_admin, admin_user, clinic, rf):
    request = rf.get("/")
    request.user = admin_user
    record(request, "export", "caseload")  # one made earlier this hour
    for _ in range(services.EXPORTS_PER_WINDOW - 1):
        assert as_admin.post("/exchange/export", {"kind": "pseudonymised"}).status_code == 200
    response = as_admin.post("/exchange/export", {"kind": "without_free_text"}, follow=True)
    assert response.redirect_chain == [("/exchange/", 302)]
    assert "exports in the last hour, the most allowed" in response.content.decode()
    assert AccessEvent.objects.filter(action="export").count() == services.EXPORTS_PER_WINDOW
    # Another admin has a limit of their own.
    other = login(HttpClient(), make_user(Role.ADMIN, username="admin2"))
    assert other.post("/exchange/export", {"kind": "without_free_text"}).status_code == 200


def test_it_counts_only_the_last_hours_exports(admin_user):
    now = timezone.now()
    for _ in range(services.EXPORTS_PER_WINDOW):
        AccessEvent.objects.create(
            user=admin_user, action="export", what="caseload", at=now - timedelta(minutes=61)
        )
    services._check_export_limit(admin_user, now=now)  # raises if they counted
    AccessEvent.objects.create(
        user=admin_user, action="export", what="caseload", at=now - timedelta(minutes=5)
    )
    for _ in range(services.EXPORTS_PER_WINDOW - 1):
        AccessEvent.objects.create(user=admin_user, action="export", what="caseload", at=now)
    with pytest.raises(services.ExportLimited) as limited:
        services._check_export_limit(admin_user, now=now)
    assert limited.value.next_at == now - timedelta(minutes=5) + services.EXPORT_WINDOW


def test_it_says_on_the_page_that_its_exports_leave_out_free_text(as_admin):
    html = as_admin.get(HOME).content.decode()
    assert "leave out free text" in html and "export_caseload" in html
    assert 'value="full"' not in html


def test_it_reimports_an_export_without_free_text_and_keeps_every_note(clinic):
    import json

    from tests.test_exchange import import_doc

    before = list(RuptureEvent.objects.order_by("pk").values_list("noticed", "plan"))
    result = import_doc(json.loads(export_text(free_text=False)))
    assert result.applied, result.problems
    assert list(RuptureEvent.objects.order_by("pk").values_list("noticed", "plan")) == before
    assert Client.objects.get(code="C-0002").name == "Jo Bloggs"
    refused = import_doc({**json.loads(export_text(free_text=False)), "free_text": "some"})
    assert not refused.applied and refused.problems[0].path == "free_text"
