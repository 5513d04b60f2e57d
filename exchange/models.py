from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

# A checked file waits this long for its admin to apply it; after that its content is
# dropped, so that copies of a clinic's records do not pile up in the database.
KEEP_UNAPPLIED = timedelta(days=1)


class UploadStatus(models.TextChoices):
    CHECKED = "checked", "Checked, ready to apply"
    REFUSED = "refused", "Has problems: nothing applied"
    APPLIED = "applied", "Applied"
    DISCARDED = "discarded", "Discarded"


class CaseloadUploadQuerySet(models.QuerySet):
    def of(self, user):
        """An admin's own uploads: a file another admin uploaded is theirs to apply or discard."""
        if not user.is_authenticated or not user.is_clinic_admin:
            return self.none()
        return self.filter(uploaded_by=user)

    def stale(self, now=None):
        now = now or timezone.now()
        return self.filter(status=UploadStatus.CHECKED, uploaded_at__lt=now - KEEP_UNAPPLIED)


class CaseloadUpload(models.Model):
    """A caseload file between its check and its import, with the report of that check.

    The file itself (`content`) is kept only while it waits to be applied; the report
    and the counts stay as the record of what was uploaded.
    """

    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)
    filename = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    content = models.BinaryField(blank=True, default=b"")
    status = models.CharField(max_length=16, choices=UploadStatus.choices)
    problems = models.JSONField(
        default=list, blank=True, help_text="[path, message] pairs, in file order."
    )
    counts = models.JSONField(
        default=dict, blank=True, help_text="Per section: created, updated, unchanged."
    )
    applied_at = models.DateTimeField(null=True, blank=True)

    objects = CaseloadUploadQuerySet.as_manager()

    class Meta:
        ordering = ["-uploaded_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=UploadStatus.values), name="upload_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(applied_at__isnull=True) | Q(status=UploadStatus.APPLIED),
                name="upload_applied_at_only_when_applied",
            ),
        ]
        indexes = [
            # The exchange page: an admin's recent uploads, newest first.
            models.Index(fields=["uploaded_by", "-uploaded_at"], name="upload_by_user"),
        ]

    def __str__(self):
        return f"{self.filename or 'caseload file'} ({self.get_status_display().lower()})"

    def get_absolute_url(self):
        return reverse("exchange_upload", args=[self.pk])

    @property
    def can_apply(self):
        return self.status == UploadStatus.CHECKED and not self.changes_nothing

    @property
    def changes_nothing(self):
        """A checked file whose every record is already in the database as it is."""
        return self.status == UploadStatus.CHECKED and not any(
            tally.get("created") or tally.get("updated") for tally in self.counts.values()
        )
