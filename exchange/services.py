"""The web side of the exchange: an upload checked, then applied; an export, rate-limited."""

import hashlib
import io
import zlib
from contextlib import contextmanager
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from accounts.services import addresses_on_file, record_email_changes
from audit.log import record
from audit.models import AccessEvent, Action
from exchange.exporter import export_caseload, snapshot
from exchange.importer import ImportResult, run_import
from exchange.models import CaseloadUpload, UploadStatus

# A clinic's whole caseload in a browser download is the most sensitive thing the app
# hands out; a handful an hour covers each kind of copy with retries.
EXPORTS_PER_WINDOW = 5
EXPORT_WINDOW = timedelta(hours=1)
_EXPORT_LOCK = zlib.crc32(b"exchange.export") & 0x7FFFFFFF


class ExportLimited(Exception):
    def __init__(self, next_at):
        super().__init__(f"export limit reached until {next_at}")
        self.next_at = next_at


def check_upload(*, request, filename: str, data: bytes) -> CaseloadUpload:
    """Check a file against the database without applying it; keep it if it can be applied."""
    CaseloadUpload.objects.stale().update(status=UploadStatus.DISCARDED, content=b"")
    result = run_import(data, dry_run=True, request=request, via="web")
    return CaseloadUpload.objects.create(
        uploaded_by=request.user,
        filename=filename[:255],
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        status=UploadStatus.CHECKED if result.ok else UploadStatus.REFUSED,
        content=data if result.ok else b"",
        problems=[[p.path, p.message] for p in result.problems],
        counts=result.counts_dict(),
    )


@transaction.atomic
def apply_upload(*, request, upload_id: int) -> ImportResult | None:
    """Import a checked upload; None if it is no longer waiting (applied, discarded, expired).

    The upload's row stays locked until the import commits, so a second click or a
    second tab waits and then finds it applied. The database may have changed since the
    check, so the file is checked again, and a problem found now is reported the same way.
    """
    upload = (
        CaseloadUpload.objects.select_for_update()
        .filter(pk=upload_id, status=UploadStatus.CHECKED)
        .exclude(pk__in=CaseloadUpload.objects.stale())
        .first()
    )
    if upload is None:
        return None
    # An import can change people's addresses: each change is recorded and announced, as in
    # the admin site, so that a file cannot quietly redirect someone's password links.
    addresses = addresses_on_file()
    result = run_import(bytes(upload.content), request=request, via="web")
    if result.applied:
        record_email_changes(request=request, before=addresses)
    upload.content = b""
    upload.counts = result.counts_dict()
    if result.applied:
        upload.status, upload.applied_at = UploadStatus.APPLIED, timezone.now()
    else:
        upload.status = UploadStatus.REFUSED
        upload.problems = [[p.path, p.message] for p in result.problems]
    upload.save(update_fields=["content", "counts", "status", "applied_at", "problems"])
    return result


def discard_upload(*, upload: CaseloadUpload) -> bool:
    return bool(
        CaseloadUpload.objects.filter(pk=upload.pk, status=UploadStatus.CHECKED).update(
            status=UploadStatus.DISCARDED, content=b""
        )
    )


def export_for_download(*, request, deidentify: bool) -> tuple[io.BytesIO, dict]:
    """The export as bytes in memory (never a temporary file: it is health information)."""
    out = io.BytesIO()
    with _one_export_at_a_time(request.user):
        _check_export_limit(request.user)
        with snapshot():
            # Clinic admins never read clinical text: the web export leaves it out.
            counts = export_caseload(lambda text: out.write(text.encode()), deidentify=deidentify, free_text=False)
            record(
                request,
                Action.EXPORT,
                "caseload",
                detail={"via": "web", "pseudonymised": deidentify, "free_text": False, "counts": counts},
            )
    out.seek(0)
    return out, counts


@contextmanager
def _one_export_at_a_time(user):
    """A lock per user across the limit check and the export's audit event.

    Held on the connection rather than in a transaction because the export runs in a
    transaction of its own, which must begin after the check saw every committed export.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [_EXPORT_LOCK, user.pk])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_EXPORT_LOCK, user.pk])


def _check_export_limit(user, now=None):
    now = now or timezone.now()
    recent = list(
        AccessEvent.objects.filter(
            user=user, action=Action.EXPORT, what="caseload", at__gt=now - EXPORT_WINDOW
        )
        .order_by("-at")
        .values_list("at", flat=True)[:EXPORTS_PER_WINDOW]
    )
    if len(recent) >= EXPORTS_PER_WINDOW:
        raise ExportLimited(recent[-1] + EXPORT_WINDOW)
