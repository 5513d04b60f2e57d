"""Writes for reports: a PDF asked for, made, and removed."""

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Role, User
from reports.models import JobStatus, ReportJob
from reports.report import SUPERVISOR, Filters, build, default_period

logger = logging.getLogger(__name__)


def report_time(now=None):
    """A report's time, to the minute: two requests within a minute give the same bytes."""
    return (now or timezone.now()).replace(second=0, microsecond=0)


def request_pdf(*, user, filters: Filters, as_of=None) -> ReportJob:
    """A job for `user`'s PDF, made by the worker once this transaction commits."""
    job = ReportJob.objects.create(requested_by=user, filters=filters.as_dict(), as_of=report_time(as_of))
    transaction.on_commit(lambda: _send(job.pk))
    return job


def _send(job_id):
    from reports.tasks import make_pdf

    try:
        make_pdf.delay(str(job_id))
    except Exception as exc:  # the job stays pending; its page says so
        logger.warning("Could not enqueue a report (%s).", exc.__class__.__name__)


def make_pdf(*, job_id) -> str:
    """Make the job's PDF; safe to run twice (a redelivered task finds it done)."""
    from reports.formats import pdf_bytes

    claimed = ReportJob.objects.filter(
        pk=job_id, status__in=[JobStatus.PENDING, JobStatus.RUNNING]
    ).update(status=JobStatus.RUNNING)
    if not claimed:
        return "skipped"
    job = ReportJob.objects.select_related("requested_by").get(pk=job_id)
    user = job.requested_by
    if not user.is_active or user.role not in (Role.ADMIN, Role.SUPERVISOR):
        ReportJob.objects.filter(pk=job_id).update(
            status=JobStatus.FAILED, finished_at=timezone.now(),
            error="The person who asked may no longer make reports.")
        return "failed"
    report = build(user, Filters.from_dict(job.filters), as_of=job.as_of)
    content = pdf_bytes(report, clinic=settings.REPORT_CLINIC_NAME)
    ReportJob.objects.filter(pk=job_id).update(status=JobStatus.DONE, content=content, finished_at=timezone.now())
    return "done"


def remove_old(*, now=None) -> int:
    deleted, _ = ReportJob.objects.expired(now).delete()
    return deleted


def monthly(*, today=None) -> int:
    """Last month's PDF for each active admin, and an e-mail with a link (no figures)."""
    from django.core.mail import send_mail
    from django.urls import reverse

    today = today or timezone.localdate()
    filters = Filters(period=default_period(today), by=SUPERVISOR, min_cell=settings.REPORT_MIN_CELL)
    sent = 0
    for admin in User.objects.filter(role=Role.ADMIN, is_active=True).exclude(email="").order_by("pk"):
        # Beat may send the same month twice (a restart): one report and one e-mail each.
        if ReportJob.objects.filter(requested_by=admin, filters=filters.as_dict()).exists():
            continue
        job = ReportJob.objects.create(requested_by=admin, filters=filters.as_dict(), as_of=report_time())
        make_pdf(job_id=job.pk)
        link = settings.SITE_URL.rstrip("/") + reverse("report_job", args=[job.pk])
        send_mail(
            subject=f"Alliance report for {filters.period.start:%B %Y} is ready",
            message=(
                f"Last month's alliance report is ready for you to download (sign-in needed):\n\n{link}\n\n"
                f"It is kept for {settings.REPORT_KEEP_DAYS} days."
            ),
            from_email=None, recipient_list=[admin.email],
        )
        sent += 1
    return sent
