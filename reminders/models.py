from django.db import models
from django.db.models import Q
from django.utils import timezone

from audit.records import AliveManager, ClinicalRecord, deletion_recorded, reason_given
from ruptures.models import RuptureEvent
from ruptures.vocabulary import OPEN_STATUSES
from sessions.models import Client, SessionStatus, TherapySession


class FlagQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(session__client__in=Client.objects.visible_to(user))

    def editable_by(self, user):
        return self.filter(session__client__in=Client.objects.editable_by(user))

    def upcoming(self, now=None):
        """Flags whose session is still ahead: what the home pages show."""
        now = now or timezone.now()
        return self.filter(
            session__status=SessionStatus.SCHEDULED, session__starts_at__gte=now,
        )

    def open(self, now=None):
        """Upcoming flags whose rupture is still open: what still needs doing."""
        return self.upcoming(now).filter(rupture__repair_status__in=sorted(OPEN_STATUSES))

    def escalated(self):
        return self.filter(escalated=True)

    def for_listing(self):
        """What a list of flags shows, in one query: session, client, rupture, therapist."""
        return self.select_related("session__client__therapist", "rupture__session").order_by(
            "session__starts_at", "session", "rupture__session__starts_at", "pk"
        )

    def by_supervisee(self):
        return self.for_listing().order_by(
            "session__client__therapist__last_name", "session__client__therapist__username",
            "session__starts_at", "session", "rupture__session__starts_at", "pk",
        )


class Flag(ClinicalRecord):
    """An open rupture R seen before the client's upcoming session U (see reminders.sweep).

    Never updated except for the notification bookkeeping: a flag whose rupture was
    repaired since is shown as such, from the rupture's own status. Hidden with its
    rupture or its session (the deletion cascade), never on its own.
    """

    # db_index off: the unique (rupture, session) constraint's index starts with it.
    rupture = models.ForeignKey(RuptureEvent, on_delete=models.PROTECT, related_name="flags", db_index=False)
    session = models.ForeignKey(TherapySession, on_delete=models.PROTECT, related_name="flags")
    raised_at = models.DateTimeField(default=timezone.now)
    # Frozen when raised: the rupture had intensity 4-5, or was carried over (a held
    # session of the client lies between the rupture's session and this one).
    escalated = models.BooleanField()
    carried_over = models.BooleanField()
    # The therapist's e-mail: claimed by one sweep with a conditional UPDATE, then sent.
    claimed_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    # The same pair for the supervisor's e-mail about an escalated flag.
    escalation_claimed_at = models.DateTimeField(null=True, blank=True)
    escalation_notified_at = models.DateTimeField(null=True, blank=True)

    objects = AliveManager.from_queryset(FlagQuerySet)()
    all_objects = FlagQuerySet.as_manager()

    hidden_with = ("rupture", "session")
    client_path = "session__client"
    key_field = "pk"
    record_name = "flag"

    class Meta:
        ordering = ["session__starts_at", "pk"]
        base_manager_name = "all_objects"
        constraints = [
            models.CheckConstraint(condition=reason_given(), name="flag_deletion_has_reason"),
            models.CheckConstraint(condition=deletion_recorded(), name="flag_deletion_recorded"),
            models.UniqueConstraint(fields=["rupture", "session"], name="flag_once_per_rupture_and_session"),
            models.CheckConstraint(
                condition=Q(escalated=True) | Q(carried_over=False), name="flag_carried_over_escalates"
            ),
            models.CheckConstraint(
                condition=Q(notified_at__isnull=True) | Q(claimed_at__isnull=False), name="flag_notified_after_claim"
            ),
            models.CheckConstraint(
                condition=Q(escalation_claimed_at__isnull=True) | Q(escalated=True),
                name="flag_escalation_only_if_escalated",
            ),
            models.CheckConstraint(
                condition=Q(escalation_notified_at__isnull=True) | Q(escalation_claimed_at__isnull=False),
                name="flag_escalation_notified_after_claim",
            ),
        ]
        indexes = [
            # The sweep's therapist claim: flags not yet e-mailed.
            models.Index(fields=["session"], condition=Q(notified_at__isnull=True), name="flag_unnotified"),
            # The sweep's supervisor claim: escalated flags not yet e-mailed.
            models.Index(
                fields=["session"], condition=Q(escalated=True, escalation_notified_at__isnull=True),
                name="flag_escalation_unnotified",
            ),
        ]

    def __str__(self):
        return f"flag {self.rupture_id} before session {self.session_id}"

    @property
    def reason(self):
        if self.carried_over:
            return "carried over"
        return "high intensity" if self.escalated else ""


class SweepHeartbeat(models.Model):
    """The last full sweep, for /healthz. One row, overwritten by each full sweep."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    finished_at = models.DateTimeField()
    raised = models.PositiveIntegerField(default=0)
    notified = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="sweep_heartbeat_one_row")]

    def __str__(self):
        return f"sweep finished {self.finished_at:%Y-%m-%d %H:%M:%S}"
