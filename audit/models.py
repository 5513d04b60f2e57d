import pgtrigger
from django.apps import apps
from django.conf import settings
from django.db import models
from django.utils import timezone


class Action(models.TextChoices):
    VIEW = "view", "Viewed"
    EXPORT = "export", "Exported"
    IMPORT = "import", "Imported"
    # An admin acting on someone's account (what: email, reset-link, second-factor).
    ACCOUNT = "account", "Changed an account"
    # A client's one-time check link: made by the therapist, opened and answered by the client.
    LINK = "link", "Made a client link"
    OPEN = "open", "Opened by the client"
    ANSWER = "answer", "Answered by the client"


class AccessEvent(models.Model):
    """Who reached which record, when and from where. Append-only (migration 0002).

    `detail` holds counts and options, never clinical text: the log itself must be
    safe to show to an admin.
    """

    at = models.DateTimeField(default=timezone.now)
    # Every record page writes a row here, so each index is paid on every view: the two
    # below (user, -at) and (client, -at) serve the lookups and the PROTECT checks, and
    # the foreign keys' own single-column indexes would only repeat them.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+", db_index=False
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    what = models.CharField(max_length=64, help_text="The kind of record, e.g. client, rupture, caseload.")
    key = models.CharField(max_length=64, blank=True, help_text="The record's key, e.g. a case code.")
    client = models.ForeignKey(
        "therapy_sessions.Client", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        db_index=False,
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [
            # The access log of one client, newest first (supervisor and admin review).
            models.Index(fields=["client", "-at"], name="access_by_client", condition=models.Q(client__isnull=False)),
            models.Index(fields=["user", "-at"], name="access_by_user"),
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.user} {self.action} {self.what} {self.key}"


class Deletion(models.Model):
    """One act of deletion: a record and everything that hung from it, hidden together.

    Every row it hid points at it (`ClinicalRecord.deletion`); restoring it brings back
    exactly those rows. Both acts stay here, and in the history of the records.
    """

    key = models.CharField(max_length=64, unique=True, help_text="Its id in caseload files.")
    at = models.DateTimeField(default=timezone.now)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    reason = models.CharField(max_length=500)
    # The record it started from: "therapy_sessions.client", its primary key and its key.
    record_type = models.CharField(max_length=64)
    record_id = models.BigIntegerField()
    record_key = models.CharField(max_length=64)
    client = models.ForeignKey("therapy_sessions.Client", on_delete=models.PROTECT, related_name="+")
    hidden = models.JSONField(default=dict, blank=True, help_text="Rows hidden, per model.")
    restored_at = models.DateTimeField(null=True, blank=True)
    restored_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    restore_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        # The record of what was deleted is itself never erased.
        triggers = [pgtrigger.Protect(name="no_hard_delete", operation=pgtrigger.Delete)]
        constraints = [
            models.CheckConstraint(condition=~models.Q(reason=""), name="deletion_has_reason"),
            models.CheckConstraint(
                condition=models.Q(restored_at__isnull=True, restore_reason="")
                | (models.Q(restored_at__isnull=False) & ~models.Q(restore_reason="")),
                name="deletion_restore_has_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["record_type", "record_id"], name="deletion_by_record"),
            models.Index(fields=["client", "-at"], name="deletion_by_client"),
        ]

    def __str__(self):
        return f"{self.record_type} {self.record_key} deleted {self.at:%Y-%m-%d %H:%M}"

    @property
    def is_restored(self):
        return self.restored_at is not None

    @property
    def record_kind(self):
        """What a person calls the record: client, session, rupture."""
        return apps.get_model(self.record_type).record_name

