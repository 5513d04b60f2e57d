import secrets
from datetime import timedelta

import pghistory
import pgtrigger
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role, supervisee_ids
from audit.records import FREE_TEXT_MAX, AliveManager, ClinicalRecord, deletion_recorded, reason_given, within_limit
from ruptures import vocabulary as v

CASE_CODE_RE = rf"^{v.CASE_CODE_PATTERN}$"
case_code_validator = RegexValidator(
    CASE_CODE_RE,
    "Use 1-32 letters, digits, dots, dashes or underscores, starting with a letter or digit.",
)


def new_key(prefix):
    """A record key for caseload files: imported files bring their own, the app makes these.

    64 random bits: with 40, a clinic's half a million alliance checks had a one in
    seven chance of two sharing a key (the birthday bound, n^2 / 2^41), and the demo's
    four-times clinic failed to build on a duplicate; at 64 bits the same clinic's odds
    are below one in a hundred million."""
    return f"{prefix}-{secrets.token_hex(8)}"


def new_session_key():
    return new_key("S")


class ClientStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    DISCHARGED = "discharged", "Discharged"


# How a therapy ended: the slugs live with the rest of the vocabulary (pure Python).
Ending = models.TextChoices("Ending", [(slug.upper(), (slug, label)) for slug, label in v.ENDINGS])


def caseload_q(user, via="", *, write=False):
    """Q: rows whose client, reached through `via` (e.g. "session__client__"), `user` may
    read: their own clients, or their supervisees'; with `write`, their own only.

    A condition on the joined client rather than `client__in=<the visible clients>`: the
    planner then starts from the therapist's clients through their index, where the IN
    form let it hash every client of the clinic.
    """
    if user.is_authenticated and user.role == Role.THERAPIST:
        return Q(**{f"{via}therapist": user})
    if user.is_authenticated and user.role == Role.SUPERVISOR and not write:
        return Q(**{f"{via}therapist__in": supervisee_ids(user)})
    # Admins manage assignments in the admin site; they do not read clinical records.
    return Q(pk__in=[])


class ClientQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Clients whose records the user may read: their own, or their supervisees'."""
        return self.filter(caseload_q(user))

    def editable_by(self, user):
        return self.filter(caseload_q(user, write=True))


@pghistory.track(append_only=True, level=pgtrigger.Statement)
class Client(ClinicalRecord):
    code = models.CharField(
        "case code", max_length=32, unique=True, validators=[case_code_validator]
    )
    name = models.CharField(max_length=200, blank=True, help_text="Optional; the case code is enough.")
    therapist = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="clients",
        limit_choices_to={"role": Role.THERAPIST},
    )
    status = models.CharField(max_length=16, choices=ClientStatus.choices, default=ClientStatus.ACTIVE)
    started_on = models.DateField(default=timezone.localdate)
    # Asked by the discharge form; the reports count endings by kind.
    ending = models.CharField("how the therapy ended", max_length=16, choices=Ending.choices, blank=True)
    discharged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AliveManager.from_queryset(ClientQuerySet)()
    all_objects = ClientQuerySet.as_manager()

    key_field = "code"
    record_name = "client"

    class Meta:
        ordering = ["code"]
        base_manager_name = "all_objects"
        triggers = [pgtrigger.Protect(name="no_hard_delete", operation=pgtrigger.Delete)]
        constraints = [
            models.CheckConstraint(condition=reason_given(), name="client_deletion_has_reason"),
            models.CheckConstraint(condition=deletion_recorded(), name="client_deletion_recorded"),
            models.CheckConstraint(condition=Q(status__in=ClientStatus.values), name="client_status_valid"),
            models.CheckConstraint(condition=Q(code__regex=CASE_CODE_RE), name="client_code_format"),
            models.CheckConstraint(
                condition=Q(ending="") | Q(ending__in=Ending.values), name="client_ending_valid"
            ),
            # How a therapy ended belongs to a therapy that did.
            models.CheckConstraint(
                condition=Q(status="discharged") | Q(ending="", discharged_at__isnull=True),
                name="client_ending_only_when_discharged",
            ),
        ]

    def __str__(self):
        return self.code

    def get_absolute_url(self):
        return reverse("client_detail", args=[self.code])

    def is_editable_by(self, user):
        """The rule of ClientQuerySet.editable_by, for a client already in hand."""
        return user.is_authenticated and user.role == Role.THERAPIST and self.therapist_id == user.pk


class SessionStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    HELD = "held", "Held"
    CANCELLED = "cancelled", "Cancelled"
    NO_SHOW = "no_show", "No-show"


class TherapySessionQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(caseload_q(user, "client__"), client__deleted_at__isnull=True)

    def editable_by(self, user):
        return self.filter(caseload_q(user, "client__", write=True), client__deleted_at__isnull=True)

    def upcoming(self, now=None):
        now = now or timezone.now()
        return self.filter(status=SessionStatus.SCHEDULED, starts_at__gte=now)

    def awaiting_log(self, now=None, days=7):
        """Took place in the last `days` days, with no rupture logged and no 'none' noted.

        A session whose time has passed but is still marked scheduled counts: the
        therapist between two clients logs first, and logging settles it as held.
        """
        now = now or timezone.now()
        # The rupture model reached through the relation it declares, so that sessions
        # does not import ruptures (the layer above); its default manager leaves deleted
        # ruptures out, so a deleted rupture does not count as logged.
        ruptures = self.model._meta.get_field("ruptures").related_model.objects
        return self.filter(
            status__in=[SessionStatus.HELD, SessionStatus.SCHEDULED],
            starts_at__gte=now - timedelta(days=days),
            starts_at__lte=now,
            no_rupture_noted_at__isnull=True,
        ).exclude(Exists(ruptures.filter(session=OuterRef("pk"))))


@pghistory.track(append_only=True, level=pgtrigger.Statement)
class TherapySession(ClinicalRecord):
    # The session's key in caseload files (`sessions[].id`): kept as imported, else made here.
    key = models.CharField(max_length=64, unique=True, default=new_session_key, editable=False)
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="sessions")
    therapist = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="therapy_sessions"
    )
    starts_at = models.DateTimeField()
    duration_minutes = models.PositiveSmallIntegerField(
        default=50, validators=[MinValueValidator(v.SESSION_MIN_MINUTES), MaxValueValidator(v.SESSION_MAX_MINUTES)]
    )
    status = models.CharField(max_length=16, choices=SessionStatus.choices, default=SessionStatus.SCHEDULED)
    note = models.TextField(blank=True, max_length=FREE_TEXT_MAX)
    # Set when the therapist says "no rupture this session", so that a held session
    # with nothing logged can be told apart from one not yet reviewed.
    no_rupture_noted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AliveManager.from_queryset(TherapySessionQuerySet)()
    all_objects = TherapySessionQuerySet.as_manager()

    hidden_with = ("client",)
    client_path = "client"
    record_name = "session"

    class Meta:
        ordering = ["-starts_at"]
        base_manager_name = "all_objects"
        triggers = [
            pgtrigger.Protect(name="no_hard_delete", operation=pgtrigger.Delete),
            # Each rupture carries a copy of its session's client (RuptureEvent.session_client).
            pgtrigger.ReadOnly(name="client_fixed", fields=["client"]),
        ]
        constraints = [
            models.CheckConstraint(condition=reason_given(), name="session_deletion_has_reason"),
            models.CheckConstraint(condition=deletion_recorded(), name="session_deletion_recorded"),
            models.CheckConstraint(condition=Q(status__in=SessionStatus.values), name="session_status_valid"),
            models.CheckConstraint(
                condition=Q(duration_minutes__gte=v.SESSION_MIN_MINUTES, duration_minutes__lte=v.SESSION_MAX_MINUTES),
                name="session_duration_range",
            ),
            models.CheckConstraint(condition=within_limit("note"), name="session_note_max_length"),
        ]
        indexes = [
            models.Index(fields=["client", "starts_at"], name="session_client_time"),
            # The therapist's home page: upcoming scheduled sessions by time.
            models.Index(
                fields=["therapist", "starts_at"], condition=Q(status="scheduled"),
                name="session_scheduled_by_therapist",
            ),
            # A client's booked sessions (the dashboard's open flags, a stalled rupture's
            # next step): session_client_time would read the client's whole history too,
            # as the planner, given a list of clients, preferred the client key alone.
            models.Index(
                fields=["client", "starts_at"], condition=Q(status="scheduled"),
                name="session_scheduled_by_client",
            ),
        ]

    def __str__(self):
        return f"{self.client.code} {timezone.localtime(self.starts_at):%Y-%m-%d %H:%M}"

    def get_absolute_url(self):
        return reverse("session_detail", args=[self.pk])

    @property
    def is_loggable(self):
        """Ruptures are logged for sessions that took place, never for future ones."""
        return self.status in (SessionStatus.SCHEDULED, SessionStatus.HELD) and (
            self.starts_at <= timezone.now()
        )
