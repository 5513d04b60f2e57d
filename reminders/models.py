from django.db import models
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from accounts.models import name_fields
from audit.records import AliveManager, ClinicalRecord, deletion_recorded, reason_given
from checks.models import AllianceCheck
from config.lookups import AnyOf
from ruptures.models import Risk, RuptureEvent
from ruptures.vocabulary import OPEN_STATUSES
from sessions.models import ClientStatus, SessionStatus, TherapySession, caseload_q

# A stalled flag matters while its client is in therapy (active or paused).
IN_THERAPY = sorted(set(ClientStatus.values) - {ClientStatus.DISCHARGED})


# Flags by their session, then by the rupture's or check's own session.
FLAG_ORDER = (
    "session__starts_at", "session", "rupture__session__starts_at", "alliance_check__session__starts_at", "pk",
)


class FlagQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(caseload_q(user, "session__client__"), session__client__deleted_at__isnull=True)

    def editable_by(self, user):
        return self.filter(caseload_q(user, "session__client__", write=True), session__client__deleted_at__isnull=True)

    def of_clients(self, client_ids):
        """Flags of these clients' sessions, the keys read first and sent as one array:
        each client's coming sessions are then read through its own index. Given the
        caseload as a condition on the joined client or a subquery, the planner read every
        session booked in the clinic, or every flag, or hashed every client (the dashboard's
        open flags; a supervisor's escalated flags: 21,162 rows on the large demo clinic,
        84,875 on one four times larger, 1,002 at both now). A narrowing for the planner,
        never access: that stays visible_to's."""
        return self.filter(AnyOf(F("session__client"), list(client_ids)))

    def upcoming(self, now=None):
        """Flags whose session is still ahead: what the home pages show."""
        now = now or timezone.now()
        return self.filter(
            session__status=SessionStatus.SCHEDULED, session__starts_at__gte=now,
        )

    def open(self, now=None):
        """Upcoming flags still needing something: an open rupture, or a client's check."""
        return self.upcoming(now).filter(
            Q(reason=FlagReason.RUPTURE, rupture__repair_status__in=sorted(OPEN_STATUSES))
            | Q(reason__in=CHECK_REASONS)
        )

    def from_checks(self):
        return self.filter(reason__in=CHECK_REASONS)

    def escalated(self):
        return self.filter(escalated=True)

    def stalled(self):
        """Stalled flags whose rupture is still open: a rupture with no next step.

        They have no session, so they are reached through their rupture's client. A
        discharged client's are done with: recording how the therapy ended is the next
        step (the flags stay, as history).
        """
        return self.filter(
            reason=FlagReason.STALLED, rupture__repair_status__in=sorted(OPEN_STATUSES),
            rupture__deleted_at__isnull=True, rupture__session__deleted_at__isnull=True,
            rupture__session_client__deleted_at__isnull=True,
            rupture__session_client__status__in=IN_THERAPY,
        )

    def stalled_visible_to(self, user):
        # Through each client's open ruptures (rupture_open_by_client), not their sessions.
        return self.stalled().filter(caseload_q(user, "rupture__session_client__"))

    def without_next_session(self, now=None):
        """Stalled flags whose client still has nothing booked: a booking made later is a
        next step, and the flags before that session take over (the flag itself stays)."""
        now = now or timezone.now()
        booked = TherapySession.objects.filter(
            client=OuterRef("rupture__session_client"), status=SessionStatus.SCHEDULED, starts_at__gte=now
        )
        return self.exclude(Exists(booked))

    def stalled_listing(self):
        """What the stalled table shows, in one query. The client through the rupture's
        own copy (session_client), the join stalled() filters on already: a second join
        to it through the session, and every column of five tables, made planning the
        therapist's home page's list cost more than running it (4 ms)."""
        return self.select_related("rupture__session", "rupture__session_client__therapist").only(
            "raised_at", "escalated", "rupture__kind", "rupture__intensity", "rupture__repair_status",
            "rupture__session__starts_at", "rupture__session_client__code",
            *name_fields("rupture__session_client__therapist"),
        ).order_by(
            "rupture__session_client__therapist__last_name", "rupture__session_client__therapist__username",
            "rupture__session__starts_at", "pk",
        )

    def for_listing(self):
        """What a list of flags shows, in one query: session, client, rupture, therapist,
        and of them only the columns the table prints. Every column of the eight tables
        (127) made planning the supervisor's home's list take longer than running it."""
        return self.select_related(
            "session__client__therapist", "rupture__session", "alliance_check__session"
        ).only(
            "reason", "escalated", "carried_over", "session__starts_at", "session__client__code",
            *name_fields("session__client__therapist"),
            "rupture__kind", "rupture__intensity", "rupture__repair_status", "rupture__session__starts_at",
            "alliance_check__intensity", "alliance_check__session__starts_at",
        ).order_by(*FLAG_ORDER)

    def under_their_sessions(self):
        """Flags listed under their own session, whose client the list already names:
        only what each flag points to is fetched with it, and of that only what the line
        shows (no rupture's narrative rides along to a list that never prints it)."""
        return self.select_related("rupture__session", "alliance_check__session").only(
            "reason", "session_id", "escalated", "carried_over",
            "rupture__kind", "rupture__intensity", "rupture__repair_status", "rupture__session__starts_at",
            "alliance_check__intensity", "alliance_check__session__starts_at",
        ).order_by(*FLAG_ORDER)

    def by_supervisee(self):
        return self.for_listing().order_by(
            "session__client__therapist__last_name", "session__client__therapist__username", *FLAG_ORDER
        )


class FlagReason(models.TextChoices):
    RUPTURE = "rupture", "Open rupture"
    UNLOGGED = "unlogged", "Client-reported rupture, not logged"
    DROP = "drop", "Drop in the client's rating"
    STALLED = "stalled", "Stalled repair"


# Flags raised from a client's alliance check (checks.meaning, §8a).
CHECK_REASONS = (FlagReason.UNLOGGED, FlagReason.DROP)


class Flag(ClinicalRecord):
    """Something to see before the client's upcoming session U (see reminders.sweep).

    `rupture`: an open rupture R. `unlogged`/`drop`: a client's check C that reported a
    rupture the therapist did not log, or a drop in the client's `together`. `stalled`
    (no session): a rupture whose repair has stalled.

    Never updated except for the notification bookkeeping: a flag whose rupture was
    repaired since is shown as such, from the rupture's own status. Hidden with its
    rupture, its session or its check (the deletion cascade), never on its own.
    """

    reason = models.CharField(max_length=16, choices=FlagReason.choices, default=FlagReason.RUPTURE)
    # db_index off: the unique (rupture, session) constraint's index starts with it.
    rupture = models.ForeignKey(
        RuptureEvent, on_delete=models.PROTECT, related_name="flags", db_index=False, null=True, blank=True
    )
    session = models.ForeignKey(
        TherapySession, on_delete=models.PROTECT, related_name="flags", null=True, blank=True
    )
    # The contract's `check` (column check_id): Django reserves `Model.check` for its
    # system checks, so the field is named in full. db_index off: the unique
    # (check, session) constraint's index starts with it.
    alliance_check = models.ForeignKey(
        AllianceCheck, on_delete=models.PROTECT, related_name="flags", db_index=False, null=True, blank=True,
        db_column="check_id",
    )
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

    hidden_with = ("rupture", "session", "alliance_check")
    client_path = "session__client"
    # The sweep inserts flags in raw SQL: the column gets its empty value from the database.
    deletion_reason = models.CharField(max_length=500, blank=True, editable=False, db_default="")
    key_field = "pk"
    record_name = "flag"

    class Meta:
        ordering = ["session__starts_at", "pk"]
        base_manager_name = "all_objects"
        constraints = [
            models.CheckConstraint(condition=reason_given(), name="flag_deletion_has_reason"),
            models.CheckConstraint(condition=deletion_recorded(), name="flag_deletion_recorded"),
            models.UniqueConstraint(
                fields=["rupture", "session"], condition=Q(reason="rupture"),
                name="flag_once_per_rupture_and_session",
            ),
            models.UniqueConstraint(
                fields=["alliance_check", "session"], condition=Q(reason__in=["unlogged", "drop"]),
                name="flag_once_per_check_and_session",
            ),
            models.UniqueConstraint(
                fields=["rupture", "reason"], condition=Q(reason="stalled"), name="flag_once_per_stalled_rupture",
            ),
            models.CheckConstraint(condition=Q(reason__in=FlagReason.values), name="flag_reason_valid"),
            # Each kind of flag points at what raised it, and only at that.
            models.CheckConstraint(
                condition=~Q(reason="rupture")
                | Q(rupture__isnull=False, session__isnull=False, alliance_check__isnull=True),
                name="flag_rupture_has_rupture_and_session",
            ),
            models.CheckConstraint(
                condition=~Q(reason__in=["unlogged", "drop"])
                | Q(alliance_check__isnull=False, session__isnull=False, rupture__isnull=True),
                name="flag_check_has_check_and_session",
            ),
            models.CheckConstraint(
                condition=~Q(reason="stalled") | Q(rupture__isnull=False, alliance_check__isnull=True),
                name="flag_stalled_has_rupture",
            ),
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
        what = f"check {self.alliance_check_id}" if self.alliance_check_id else f"rupture {self.rupture_id}"
        return f"{self.reason} flag: {what} before session {self.session_id}"

    @property
    def escalation_reason(self):
        if self.reason == FlagReason.STALLED:
            return "stalled"
        if self.reason in CHECK_REASONS:
            return "carried over" if self.carried_over else "client's intensity 4-5"
        if self.carried_over:
            return "carried over"
        return "high intensity" if self.escalated else ""


class RiskAlert(models.Model):
    """The supervisor is told at once of a risk recorded on a rupture (domain 6b).

    One per rupture and risk: a rupture edited to a different risk is told again. Raised
    and e-mailed by the same sweep as the flags, with the same claim, so two sweeps never
    send it twice; never deleted.
    """

    rupture = models.ForeignKey(RuptureEvent, on_delete=models.PROTECT, related_name="risk_alerts", db_index=False)
    risk = models.CharField(max_length=16, choices=Risk.choices)
    raised_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rupture", "risk"], name="risk_alert_once_per_rupture_and_risk"),
            models.CheckConstraint(
                condition=Q(risk__in=[r for r in Risk.values if r != Risk.NONE]), name="risk_alert_risk_valid"
            ),
            models.CheckConstraint(
                condition=Q(notified_at__isnull=True) | Q(claimed_at__isnull=False),
                name="risk_alert_notified_after_claim",
            ),
        ]
        indexes = [
            # The sweep's claim: alerts not yet e-mailed.
            models.Index(fields=["rupture"], condition=Q(notified_at__isnull=True), name="risk_alert_unnotified"),
        ]

    def __str__(self):
        return f"risk alert {self.risk} on rupture {self.rupture_id}"


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
