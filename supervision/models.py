from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone

from ruptures.models import RuptureEvent, rupture_caseload_q

NOTE_MAX_LENGTH = 2000


class SupervisionNoteQuerySet(models.QuerySet):
    def editable_by(self, user):
        """Notes on ruptures `user` may edit: a therapist's own clients'."""
        return self.filter(rupture_caseload_q(user, "rupture__", write=True))

    def for_rupture(self, rupture):
        notes = self.filter(rupture=rupture).select_related("supervisor")
        return notes.order_by("created_at", "pk")


def notes_on(rupture):
    """The rupture's notes, oldest first, read once however often its page shows them:
    its history (supervision.history) and its Supervision section both do. Kept on the
    instance, which lives for one request; a note is added by a POST that redirects."""
    if not hasattr(rupture, "_supervision_notes"):
        rupture._supervision_notes = list(SupervisionNote.objects.for_rupture(rupture))
    return rupture._supervision_notes


class SupervisionNote(models.Model):
    """A rupture marked "discussed in supervision", with what the supervisor said.

    Append-only (migration 0002): a note is part of the clinical record, so a second
    discussion adds a second note rather than rewriting the first.
    """

    # Indexed by supervision_note_by_rupture below, which leads with this column.
    rupture = models.ForeignKey(
        RuptureEvent, on_delete=models.PROTECT, related_name="supervision_notes", db_index=False
    )
    supervisor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    comment = models.TextField(max_length=NOTE_MAX_LENGTH)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = SupervisionNoteQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(comment__regex=r"\S"), name="supervision_note_not_blank"
            ),
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("comment"), NOTE_MAX_LENGTH),
                name="supervision_note_max_length",
            ),
        ]
        indexes = [
            # "Not yet discussed" on the dashboards (EXISTS ... WHERE rupture_id = r.id)
            # and a rupture's notes in order on its page.
            models.Index(fields=["rupture", "created_at"], name="supervision_note_by_rupture"),
        ]

    def __str__(self):
        return f"Discussed by {self.supervisor} on {timezone.localtime(self.created_at):%Y-%m-%d}"


def discussed(rupture_ref="pk"):
    """An EXISTS expression: has the rupture at `rupture_ref` been discussed in supervision?"""
    return Exists(SupervisionNote.objects.filter(rupture=OuterRef(rupture_ref)))
