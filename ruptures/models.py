from datetime import timedelta

import pghistory
import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Count, OuterRef, Q
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from audit.records import FREE_TEXT_MAX, AliveManager, ClinicalRecord, deletion_recorded, reason_given, within_limit
from ruptures import vocabulary as v
from sessions.models import TherapySession, caseload_q, new_key


def new_rupture_key():
    return new_key("R")


def _choices(name, table):
    """TextChoices whose values are the domain.md slugs of a vocabulary table."""
    return models.TextChoices(name, [(slug.upper(), (slug, label)) for slug, label, *_ in table])


Kind = _choices("Kind", v.KINDS)
Actor = _choices("Actor", v.ACTORS)
Marker = _choices("Marker", v.MARKERS)
InternalSignal = _choices("InternalSignal", v.INTERNAL_SIGNALS)
Source = _choices("Source", v.SOURCES)
RepairStatus = _choices("RepairStatus", v.REPAIR_STATUSES)
Strategy = _choices("Strategy", v.STRATEGY_TABLE)
Risk = _choices("Risk", v.RISKS)
Stage = _choices("Stage", v.STAGES)

OPEN_STATUSES = sorted(v.OPEN_STATUSES)
ATTEMPT_OUTCOMES = [s for s in RepairStatus.values if s != RepairStatus.UNADDRESSED]


def rupture_caseload_q(user, via="", *, write=False):
    """Q: ruptures, reached through `via` (e.g. "rupture__"), that `user` may read (with
    `write`, edit): their client in the caseload, and neither they, their session nor
    their client deleted, which TherapySession.objects.visible_to also requires.

    Through `via`, a list of what hangs off ruptures (supervision notes) filters on the
    joins it reads anyway, rather than on `rupture__in=<visible ruptures>`: that repeats
    the three joins in a subquery, and planning the home page's notes took 4 ms of it.
    It reaches the client through the rupture's own copy (`session_client`), so that such
    a list starts from the caseload's ruptures by their client index: through the session
    it visited every session each client ever had (the large demo's home page: 530
    sessions for 214 ruptures, 1,824 buffers where it now reads 563).
    """
    client = "session_client__" if via else "session__client__"
    # Read through its own manager a rupture is alive already (AliveManager, or
    # all_objects on purpose); through `via`, only this says so.
    alive = ("session__", client) + (("",) if via else ())
    return Q(
        caseload_q(user, f"{via}{client}", write=write),
        **{f"{via}{path}deleted_at__isnull": True for path in alive},
    )


class RuptureEventQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(rupture_caseload_q(user))

    def editable_by(self, user):
        return self.filter(rupture_caseload_q(user, write=True))

    def open(self):
        return self.filter(repair_status__in=OPEN_STATUSES)

    # The two below find open ruptures through their client (rupture_open_by_client), so
    # they cost what the client's open ruptures do, never what all of their sessions do.

    def open_of_client(self, client):
        return self.open().filter(session_client=client)

    def open_in_caseload(self, user, *, write=False):
        """Open ruptures of the clients `user` may read (with `write`, edit): visible_to
        and editable_by, narrowed to open ones the same way."""
        return self.open().filter(
            caseload_q(user, "session_client__", write=write),
            session__deleted_at__isnull=True, session_client__deleted_at__isnull=True,
        )

    def with_risk(self):
        return self.exclude(risk=Risk.NONE)

    def risk_news(self, now=None):
        """Risks that are news to the record (6b): what the sweep alerts supervisors of and
        what their home page lists, one definition for both.

        A risk is news for RISK_ALERT_DAYS after it was logged or changed to in the app
        (`risk_recorded_at`), however old its session (a therapist logging late), or while
        its session is that recent (a recent session imported). An import of older
        history leaves `risk_recorded_at` empty, so it tells nobody.
        """
        since = (now or timezone.now()) - timedelta(days=settings.RISK_ALERT_DAYS)
        return self.with_risk().filter(Q(risk_recorded_at__gte=since) | Q(session__starts_at__gte=since))

    def newest_news_first(self):
        return self.order_by(Coalesce("risk_recorded_at", "session__starts_at").desc(), "-pk")


# The session's client on each rupture, copied by the database (see RuptureEvent): before
# an insert, and before any update that names the session or the copy.
_COPY_SESSION_CLIENT = f"""
    NEW.session_client_id := (SELECT client_id FROM {TherapySession._meta.db_table} WHERE id = NEW.session_id);
    RETURN NEW;
"""


# The copy is not history: an event for it would say the rupture changed when nothing did.
@pghistory.track(append_only=True, level=pgtrigger.Statement, exclude=["session_client"])
class RuptureEvent(ClinicalRecord):
    # The rupture's key in caseload files (`ruptures[].id`).
    key = models.CharField(max_length=64, unique=True, default=new_rupture_key, editable=False)
    session = models.ForeignKey(TherapySession, on_delete=models.PROTECT, related_name="ruptures")
    # session.client, kept by a trigger (sessions never change client; a trigger on them
    # says so): a client's open ruptures are then found through one index, not by
    # visiting every session the client ever had, which grows with the clinic's age.
    # Empty on an instance until it is read back; read `client` (through the session).
    session_client = models.ForeignKey(
        "therapy_sessions.Client", on_delete=models.PROTECT, null=True, editable=False, related_name="+",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    actor = models.CharField(max_length=16, choices=Actor.choices, default=Actor.CLIENT)
    markers = ArrayField(models.CharField(max_length=32, choices=Marker.choices), default=list, blank=True)
    intensity = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text="1 = barely noticeable, 5 = threatened the work.",
    )
    minute = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(v.SESSION_MAX_MINUTES)],
        help_text="When in the session, if you remember.",
    )
    source = models.CharField(max_length=32, choices=Source.choices, default=Source.UNKNOWN)
    internal_signals = ArrayField(
        models.CharField(max_length=16, choices=InternalSignal.choices), default=list, blank=True
    )
    internal_signals_other = models.CharField("other signal", max_length=200, blank=True)
    noticed = models.TextField("what I noticed in the client", blank=True, max_length=FREE_TEXT_MAX)
    hypothesis = models.TextField(blank=True, max_length=FREE_TEXT_MAX)
    plan = models.TextField("plan to check it", blank=True, max_length=FREE_TEXT_MAX)
    repair_status = models.CharField(
        max_length=24, choices=RepairStatus.choices, default=RepairStatus.UNADDRESSED
    )
    # Section 6b: safety comes before the relationship.
    risk = models.CharField("risk concern", max_length=16, choices=Risk.choices, default=Risk.NONE)
    # When a save in the app logged this risk or changed the rupture to it (6b): a risk
    # is news to the supervisor from then, whatever the session's date. Empty with no
    # risk, and for a risk that came with an import (history: the session's date decides).
    # created_at and updated_at cannot say it: an import stamps both with its own time,
    # and any edit moves updated_at.
    risk_recorded_at = models.DateTimeField(null=True, blank=True, editable=False)
    declined_relational_talk = models.BooleanField(
        "the client declined to talk about our relationship", default=False
    )
    # Optimistic locking: an edit names the version it started from, and loses to
    # nobody silently (see services.update_rupture).
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = AliveManager.from_queryset(RuptureEventQuerySet)()
    all_objects = RuptureEventQuerySet.as_manager()

    hidden_with = ("session",)
    # The session's client hides the session, and the session this rupture: the copy
    # needs no cascade of its own (nor the index an UPDATE through it would).
    not_hidden_with = ("session_client",)
    client_path = "session__client"
    record_name = "rupture"

    class Meta:
        ordering = ["-session__starts_at", "-pk"]
        base_manager_name = "all_objects"
        triggers = [
            pgtrigger.Protect(name="no_hard_delete", operation=pgtrigger.Delete),
            pgtrigger.Trigger(
                name="copy_session_client", when=pgtrigger.Before,
                operation=pgtrigger.Insert | pgtrigger.UpdateOf("session_id", "session_client_id"),
                func=_COPY_SESSION_CLIENT,
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=reason_given(), name="rupture_deletion_has_reason"),
            models.CheckConstraint(condition=deletion_recorded(), name="rupture_deletion_recorded"),
            models.CheckConstraint(condition=Q(intensity__gte=1, intensity__lte=5), name="rupture_intensity_1_5"),
            models.CheckConstraint(
                condition=Q(minute__isnull=True) | Q(minute__lte=v.SESSION_MAX_MINUTES), name="rupture_minute_range"
            ),
            models.CheckConstraint(condition=Q(kind__in=Kind.values), name="rupture_kind_valid"),
            models.CheckConstraint(condition=Q(actor__in=Actor.values), name="rupture_actor_valid"),
            models.CheckConstraint(condition=Q(source__in=Source.values), name="rupture_source_valid"),
            models.CheckConstraint(
                condition=Q(repair_status__in=RepairStatus.values), name="rupture_status_valid"
            ),
            models.CheckConstraint(condition=Q(risk__in=Risk.values), name="rupture_risk_valid"),
            models.CheckConstraint(
                condition=~Q(risk="none") | Q(risk_recorded_at__isnull=True), name="rupture_no_risk_no_risk_time"
            ),
            models.CheckConstraint(
                condition=Q(markers__contained_by=Marker.values), name="rupture_markers_known"
            ),
            models.CheckConstraint(
                condition=Q(internal_signals__contained_by=InternalSignal.values),
                name="rupture_signals_known",
            ),
            # Compared with '{}' rather than by length: array_length('{}') is NULL, and a
            # NULL check passes.
            models.CheckConstraint(
                condition=Q(actor="therapist") | ~Q(markers=[]),
                name="rupture_client_side_has_marker",
            ),
            models.CheckConstraint(condition=within_limit("noticed"), name="rupture_noticed_max_length"),
            models.CheckConstraint(condition=within_limit("hypothesis"), name="rupture_hypothesis_max_length"),
            models.CheckConstraint(condition=within_limit("plan"), name="rupture_plan_max_length"),
        ]
        indexes = [
            # RuptureEvent.objects.open(): home pages, session briefs and the flag sweep.
            models.Index(
                fields=["session"], condition=Q(repair_status__in=OPEN_STATUSES),
                name="rupture_open_by_session",
            ),
            # A client's open ruptures (open_ruptures_of_client, the dashboard measures).
            models.Index(
                fields=["session_client"], condition=Q(repair_status__in=OPEN_STATUSES),
                name="rupture_open_by_client",
            ),
            # The sweep's risk alerts and the supervisor's home page: ruptures with a risk
            # (risk_news). No index on risk_recorded_at: its OR with the session's date
            # spans two tables, so the plans read this index (EXPLAIN'd on the large demo).
            models.Index(fields=["session"], condition=~Q(risk="none"), name="rupture_with_risk"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} rupture in {self.session}"

    def get_absolute_url(self):
        return reverse("rupture_detail", args=[self.pk])

    @property
    def is_open(self):
        return self.repair_status in v.OPEN_STATUSES

    @property
    def client(self):
        return self.session.client

    @property
    def has_risk(self):
        return self.risk != Risk.NONE

    def marker_labels(self):
        return [Marker(m).label for m in self.markers]

    def signal_labels(self):
        return [InternalSignal(s).label for s in self.internal_signals]


def open_ruptures_of_client(client_ref="pk"):
    """Subquery: how many open ruptures the client at `client_ref` has (NULL for none)."""
    return (
        RuptureEvent.objects.open_of_client(OuterRef(client_ref))
        .order_by()
        .values("session_client")
        .annotate(n=Count("pk"))
        .values("n")
    )


@pghistory.track(append_only=True, level=pgtrigger.Statement)
class RepairAttempt(ClinicalRecord):
    rupture = models.ForeignKey(RuptureEvent, on_delete=models.PROTECT, related_name="attempts")
    # The same session as the rupture or a later one of the same client: enforced by the
    # trigger in migration 0002, since a CHECK cannot look across tables.
    session = models.ForeignKey(TherapySession, on_delete=models.PROTECT, related_name="repair_attempts")
    strategy = models.CharField(max_length=32, choices=Strategy.choices)
    outcome = models.CharField(
        max_length=24, choices=[(s, RepairStatus(s).label) for s in ATTEMPT_OUTCOMES]
    )
    # Section 6d: how far the repair got (optional).
    stage_reached = models.CharField(max_length=24, choices=Stage.choices, blank=True)
    note = models.TextField(blank=True, max_length=FREE_TEXT_MAX)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AliveManager()

    # Hidden with its rupture, and with the session it was tried in.
    hidden_with = ("rupture", "session")
    client_path = "rupture__session__client"
    key_field = "pk"
    record_name = "repair attempt"

    class Meta:
        ordering = ["session__starts_at", "created_at", "pk"]
        base_manager_name = "all_objects"
        triggers = [pgtrigger.Protect(name="no_hard_delete", operation=pgtrigger.Delete)]
        constraints = [
            models.CheckConstraint(condition=reason_given(), name="attempt_deletion_has_reason"),
            models.CheckConstraint(condition=deletion_recorded(), name="attempt_deletion_recorded"),
            models.CheckConstraint(condition=Q(strategy__in=Strategy.values), name="attempt_strategy_valid"),
            models.CheckConstraint(condition=Q(outcome__in=ATTEMPT_OUTCOMES), name="attempt_outcome_valid"),
            models.CheckConstraint(condition=within_limit("note"), name="attempt_note_max_length"),
            models.CheckConstraint(
                condition=Q(stage_reached="") | Q(stage_reached__in=Stage.values), name="attempt_stage_valid"
            ),
        ]

    def __str__(self):
        return f"{self.get_strategy_display()}: {self.get_outcome_display()}"
