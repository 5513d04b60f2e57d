"""What every clinical record shares: it is never hard-deleted, and deleting it cascades.

Deleting is one recorded act (`audit.models.Deletion`): who, when, why and which record
it started from. It hides that record and everything that hangs from it, and every
row it hid points at it, so restoring it brings back exactly those rows (not rows
deleted separately before). Each concrete model adds `pgtrigger.Protect` for DELETE so
the database refuses a real one, raw SQL included. The default manager hides deleted
rows, so that no page can show one by forgetting a filter; `all_objects` (also the
base manager, for foreign keys) still sees them.

A model joins the cascade declaratively (see DEVELOPERS.md, "Deletion"):
- inherit `ClinicalRecord` (and add the two CHECKs of `deletion_constraints`);
- name in `hidden_with` the foreign keys whose target's deletion hides this row;
- name in `client_path` the lookup from the row to its client ("" for the client).
`audit.checks` refuses to start the app if a foreign key to another clinical record is
left out of `hidden_with` without being listed in `not_hidden_with`.
"""

from django import forms
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual


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
    # The act that hid this row: the row it started from, or one above it.
    deletion = models.ForeignKey(
        "audit.Deletion", on_delete=models.PROTECT, null=True, blank=True, editable=False, related_name="+",
    )

    all_objects = models.Manager()

    # Foreign keys whose target's deletion hides this row too (the cascade).
    hidden_with: tuple[str, ...] = ()
    # Foreign keys to clinical records that deliberately do not cascade.
    not_hidden_with: tuple[str, ...] = ()
    # The lookup from this row to its client: who may delete and restore it.
    client_path: str = ""
    # The field that names this row in caseload files and in restore_record.
    key_field: str = "key"
    # What a person calls it, in messages and the history.
    record_name: str = "record"

    class Meta:
        abstract = True

    def soft_delete(self, *, by, reason):
        """Hide this record and everything that hangs from it; the recorded Deletion."""
        from audit.deletion import delete_record  # the service builds on this model

        return delete_record(record=self, by=by, reason=reason)


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


class RestoreForm(forms.Form):
    reason = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept with the deletion, in the record's history.",
    )

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why these records are being restored.")
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


def deletion_recorded():
    """CHECK: a row is deleted exactly when a recorded deletion hides it."""
    return Q(deleted_at__isnull=True, deletion__isnull=True) | Q(deleted_at__isnull=False, deletion__isnull=False)
