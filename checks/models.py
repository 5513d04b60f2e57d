import hashlib

import pghistory
import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import OuterRef, Q
from django.utils import timezone

from audit.records import AliveManager, ClinicalRecord, deletion_recorded, reason_given
from checks import meaning as m
from config.lookups import finds_none
from ruptures.models import RuptureEvent
from sessions.models import TherapySession, new_key


class Respondent(models.TextChoices):
    THERAPIST = "therapist", "Therapist"
    CLIENT = "client", "Client"


class Tension(models.TextChoices):
    YES = "yes", "Yes"
    NO = "no", "No"
    RATHER_NOT_SAY = "rather_not_say", "Rather not say"


def new_check_key():
    return new_key("K")


class InstrumentQuerySet(models.QuerySet):
    def current(self, respondent):
        """The newest version of the clinic's post-session check for one respondent."""
        return (
            self.filter(slug=settings.CHECK_INSTRUMENT, respondent=respondent).order_by("-version").first()
        )


class Instrument(models.Model):
    """A questionnaire as data (see checks.instruments for the file that defines one).

    Never changed once stored (a trigger refuses UPDATE and DELETE): answers always
    point at the wording that was asked. New wording is a new version.
    """

    slug = models.CharField(max_length=48)
    version = models.PositiveSmallIntegerField()
    respondent = models.CharField(max_length=16, choices=Respondent.choices)
    title = models.CharField(max_length=200)
    items = models.JSONField()
    loaded_at = models.DateTimeField(default=timezone.now)

    objects = InstrumentQuerySet.as_manager()

    class Meta:
        ordering = ["slug", "respondent", "version"]
        constraints = [
            models.UniqueConstraint(fields=["slug", "version", "respondent"], name="instrument_version_once"),
            models.CheckConstraint(condition=Q(respondent__in=Respondent.values), name="instrument_respondent_valid"),
        ]
        triggers = [
            pgtrigger.Protect(name="instrument_immutable", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self):
        return f"{self.slug} v{self.version} ({self.respondent})"

    def meaning_map(self) -> dict:
        return {item["slug"]: item["meaning"] for item in self.items if item.get("meaning")}

    def item(self, slug):
        return next((item for item in self.items if item["slug"] == slug), None)

    def item_for(self, meaning):
        return next((item for item in self.items if item.get("meaning") == meaning), None)

    def free_text_items(self) -> list[str]:
        return [item["slug"] for item in self.items if item["type"] == "text"]


class AllianceCheckQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(session__in=TherapySession.objects.visible_to(user))

    def editable_by(self, user):
        return self.filter(session__in=TherapySession.objects.editable_by(user))

    def therapist(self):
        return self.filter(respondent=Respondent.THERAPIST)

    def client(self):
        return self.filter(respondent=Respondent.CLIENT)

    def answered(self):
        return self.filter(declined=False)

    def unlogged(self):
        """§8a: client-reported ruptures the therapist neither logged nor saw (unlogged_at)."""
        return self.client().filter(
            unlogged_at(OuterRef("session")), client_reported_rupture=True, session__deleted_at__isnull=True,
        )


def unlogged_at(session):
    """The condition that makes a client-reported rupture in `session` (an OuterRef to a
    session) unlogged (§8a): no rupture logged in that session, and the therapist's check
    did not answer `tension` = `yes` (a `no`, no answer, or no check at all). It needs the
    session's other records, which checks.meaning cannot see, so this is its one home in
    the ORM: AllianceCheck.objects.unlogged() and the dashboards' counts
    (supervision.measures) both apply it; the sweep's SQL says the same.
    """
    therapist_saw_it = AllianceCheck.objects.filter(
        session=session, respondent=Respondent.THERAPIST, tension=Tension.YES
    )
    return Q(finds_none(therapist_saw_it)) & Q(finds_none(RuptureEvent.objects.filter(session=session)))


# A text answer holds at most its item's `max_length`. The limit is the instrument's data,
# not the column's, so no CHECK can say it: this trigger reads it from the check's
# instrument and refuses more (as a check violation, like the other text limits), so a
# write that skips the form and the import (the shell, SQL) cannot store a pasted document.
ANSWERS_WITHIN_LIMITS = pgtrigger.Trigger(
    name="answers_within_limits",
    when=pgtrigger.Before,
    operation=pgtrigger.Insert | pgtrigger.UpdateOf("answers", "instrument_id"),
    declare=[("item", "jsonb"), ("answer", "jsonb")],
    func=f"""
        FOR item IN
            SELECT value FROM jsonb_array_elements(
                (SELECT items FROM {Instrument._meta.db_table} WHERE id = NEW.instrument_id))
        LOOP
            CONTINUE WHEN item->>'type' <> 'text' OR NOT NEW.answers ? (item->>'slug');
            answer := NEW.answers -> (item->>'slug');
            IF jsonb_typeof(answer) <> 'string'
               OR char_length(answer #>> '{{}}') > (item->>'max_length')::integer THEN
                RAISE EXCEPTION USING
                    ERRCODE = 'check_violation',
                    CONSTRAINT = 'check_answers_max_length',
                    MESSAGE = 'check_answers_max_length: the answer to ' || (item->>'slug')
                        || ' must be text of at most ' || (item->>'max_length') || ' characters';
            END IF;
        END LOOP;
        RETURN NEW;
    """,
)


@pghistory.track(append_only=True, level=pgtrigger.Statement)
class AllianceCheck(ClinicalRecord):
    """One respondent's answers to the post-session check of one session.

    The meaning columns are filled from the answers and the instrument's item-to-meaning
    mapping when the answers are set (`set_answers`), so that SQL can count them.
    """

    # The check's key in caseload files (`checks[].id`).
    key = models.CharField(max_length=64, unique=True, default=new_check_key, editable=False)
    session = models.ForeignKey(TherapySession, on_delete=models.PROTECT, related_name="checks")
    respondent = models.CharField(max_length=16, choices=Respondent.choices)
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="checks")
    answers = models.JSONField(default=dict, blank=True)
    submitted_at = models.DateTimeField(default=timezone.now)
    declined = models.BooleanField(default=False)
    # NULL, not "": SQL counts "not answered" apart from every answer (checks.meaning).
    tension = models.CharField(max_length=16, choices=Tension.choices, null=True, blank=True)  # noqa: DJ001
    intensity = models.PositiveSmallIntegerField(null=True, blank=True)
    worked_through = models.PositiveSmallIntegerField(null=True, blank=True)
    together = models.PositiveSmallIntegerField(null=True, blank=True)
    client_reported_rupture = models.BooleanField(default=False)

    objects = AliveManager.from_queryset(AllianceCheckQuerySet)()
    all_objects = AllianceCheckQuerySet.as_manager()

    # The deletion cascade (audit.records): hidden with its session.
    hidden_with = ("session",)
    client_path = "session__client"
    record_name = "alliance check"

    class Meta:
        ordering = ["session__starts_at", "respondent"]
        base_manager_name = "all_objects"
        triggers = [pgtrigger.Protect(name="no_hard_delete", operation=pgtrigger.Delete), ANSWERS_WITHIN_LIMITS]
        constraints = [
            models.CheckConstraint(condition=reason_given(), name="check_deletion_has_reason"),
            models.CheckConstraint(condition=deletion_recorded(), name="check_deletion_recorded"),
            models.CheckConstraint(condition=Q(respondent__in=Respondent.values), name="check_respondent_valid"),
            models.CheckConstraint(
                condition=Q(tension__isnull=True) | Q(tension__in=Tension.values), name="check_tension_valid"
            ),
            *[
                models.CheckConstraint(
                    condition=Q(**{f"{name}__isnull": True})
                    | Q(**{f"{name}__gte": m.SCALE_MIN, f"{name}__lte": m.SCALE_MAX}),
                    name=f"check_{name}_range",
                )
                for name in m.SCALE_MEANINGS
            ],
            # A declined check holds no answers; only a client reports a rupture this way.
            models.CheckConstraint(
                condition=Q(declined=False) | Q(answers={}, tension__isnull=True, together__isnull=True),
                name="check_declined_is_empty",
            ),
            models.CheckConstraint(
                condition=Q(respondent="client") | Q(client_reported_rupture=False),
                name="check_reported_by_client_only",
            ),
            # One live check per respondent and session: two submissions store one.
            models.UniqueConstraint(
                fields=["session", "respondent"], condition=Q(deleted_at__isnull=True),
                name="check_once_per_session_and_respondent",
            ),
        ]
        indexes = [
            # The sweep's unlogged flags (reminders.sweep.raise_check_flags): a client's
            # reported ruptures, found from their sessions.
            models.Index(
                fields=["session"], name="check_reported_by_session",
                condition=Q(respondent="client", client_reported_rupture=True, declined=False,
                            deleted_at__isnull=True),
            ),
        ]

    def __str__(self):
        return f"{self.respondent} check {self.key}"

    def set_answers(self, answers: dict):
        """Store the answers and the meanings they carry under the instrument's mapping."""
        self.answers = answers
        found = m.meanings_of(answers, self.instrument.meaning_map())
        self.tension, self.intensity = found["tension"], found["intensity"]
        self.worked_through, self.together = found["worked_through"], found["together"]
        self.client_reported_rupture = self.respondent == Respondent.CLIENT and m.client_reported_rupture(
            tension=self.tension, intensity=self.intensity, worked_through=self.worked_through
        )

    def free_text(self):
        """The respondent's own words: [(question, text)]."""
        return [
            (item["text"], self.answers[item["slug"]])
            for item in self.instrument.items
            if item["type"] == "text" and self.answers.get(item["slug"])
        ]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ClientCheckLinkQuerySet(models.QuerySet):
    def usable(self, now=None):
        """Links a client may still answer: unused, unexpired, of a session still on record."""
        now = now or timezone.now()
        return self.filter(
            used_at__isnull=True, expires_at__gt=now,
            session__deleted_at__isnull=True, session__client__deleted_at__isnull=True,
        )


class ClientCheckLink(ClinicalRecord):
    """A one-time link for the client's check. Only the token's SHA-256 is kept."""

    session = models.ForeignKey(TherapySession, on_delete=models.PROTECT, related_name="client_check_links")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    check_made = models.OneToOneField(
        AllianceCheck, on_delete=models.PROTECT, null=True, blank=True, related_name="link"
    )

    objects = AliveManager.from_queryset(ClientCheckLinkQuerySet)()
    all_objects = ClientCheckLinkQuerySet.as_manager()

    hidden_with = ("session", "check_made")
    client_path = "session__client"
    key_field = "pk"
    record_name = "check link"

    class Meta:
        base_manager_name = "all_objects"
        triggers = [pgtrigger.Protect(name="no_hard_delete", operation=pgtrigger.Delete)]
        constraints = [
            models.CheckConstraint(condition=reason_given(), name="link_deletion_has_reason"),
            models.CheckConstraint(condition=deletion_recorded(), name="link_deletion_recorded"),
            models.CheckConstraint(condition=Q(used_at__isnull=False) | Q(check_made__isnull=True),
                                   name="link_check_only_when_used"),
        ]

    def __str__(self):
        return f"client link for session {self.session_id}"
