import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class JobStatus(models.TextChoices):
    PENDING = "pending", "Waiting to start"
    RUNNING = "running", "Being made"
    DONE = "done", "Ready"
    FAILED = "failed", "Failed"


class ReportJobQuerySet(models.QuerySet):
    def for_requester(self, user):
        """A made report belongs to the person who asked for it, and to nobody else."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(requested_by=user)

    def expired(self, now=None):
        now = now or timezone.now()
        return self.filter(requested_at__lt=now - timezone.timedelta(days=settings.REPORT_KEEP_DAYS))


class ReportJob(models.Model):
    """A PDF alliance report asked for on the page (or by the monthly beat), made by a task.

    The file is kept in the database, so the web and the worker need no shared disk; the
    beat task `reports.remove_old` deletes jobs older than REPORT_KEEP_DAYS. It holds counts
    only, never a client's record.
    """

    # The address of the status page and the download: not guessable, not enumerable.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    # The report's filters (reports.report.Filters.as_dict) and its time: what it shows.
    filters = models.JSONField()
    as_of = models.DateTimeField()
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING)
    finished_at = models.DateTimeField(null=True, blank=True)
    content = models.BinaryField(null=True, blank=True, editable=False)
    error = models.CharField(max_length=200, blank=True)

    objects = ReportJobQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=JobStatus.values), name="report_job_status_valid"),
            models.CheckConstraint(
                condition=~Q(status="done") | Q(content__isnull=False), name="report_job_done_has_content"
            ),
        ]
        indexes = [models.Index(fields=["requested_at"], name="report_job_requested_at")]

    def __str__(self):
        return f"report {self.pk} for {self.requested_by_id} ({self.status})"

    @property
    def filename(self):
        return f"alliance-report-{self.filters['from']}-to-{self.filters['to']}.pdf"
