"""What every clinical record shares: it is never hard-deleted.

Deleting is a soft delete with a reason (`soft_delete`), and each concrete model adds
`pgtrigger.Protect` for DELETE so the database refuses a real one, raw SQL included.
The default manager hides deleted rows, so that no page can show one by forgetting a
filter; `all_objects` (also the base manager, for foreign keys) still sees them.
"""

from django import forms
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone


class AliveManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=True)


class ClinicalRecord(models.Model):
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        editable=False, related_name="+",
    )
    deletion_reason = models.CharField(max_length=500, blank=True, editable=False)

    all_objects = models.Manager()

    class Meta:
        abstract = True

    def soft_delete(self, *, by, reason):
        if not reason.strip():
            raise ValueError("a deletion needs a reason")
        self.deleted_at, self.deleted_by, self.deletion_reason = timezone.now(), by, reason.strip()
        self.save(update_fields=["deleted_at", "deleted_by", "deletion_reason"])


class DeletionForm(forms.Form):
    reason = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept with the record: it is hidden, never erased.",
    )

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why this record is being deleted.")
        return reason


# Free text in clinical records: room for a careful paragraph or two, never a pasted
# document. Forms say so with a counter, and the database refuses more (`within_limit`).
FREE_TEXT_MAX = 2000


def within_limit(field, limit=FREE_TEXT_MAX):
    """CHECK: a text column holds at most `limit` characters."""
    return LessThanOrEqual(Length(field), limit)


def reason_given():
    """CHECK: a deleted row always says why."""
    return Q(deleted_at__isnull=True) | ~Q(deletion_reason="")
