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
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    action = models.CharField(max_length=16, choices=Action.choices)
    what = models.CharField(max_length=64, help_text="The kind of record, e.g. client, rupture, caseload.")
    key = models.CharField(max_length=64, blank=True, help_text="The record's key, e.g. a case code.")
    client = models.ForeignKey(
        "therapy_sessions.Client", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
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
