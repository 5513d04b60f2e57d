"""Deleting and restoring clinical records: one act each, set-based, in one transaction.

The cascade follows each model's `hidden_with` (see audit.records): one UPDATE per
foreign key, parents before children, each hiding the children of rows that this
deletion hid. Its cost follows the size of what is deleted, never of the clinic.
"""

import secrets
from collections import defaultdict

from django.apps import apps
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from audit.models import Deletion
from audit.records import ClinicalRecord
from audit.signals import caseload_changed


class DeletionError(Exception):
    """Deleting or restoring as asked is not possible; the message says why, for a person."""


def clinical_models():
    return [m for m in apps.get_models() if issubclass(m, ClinicalRecord)]


def cascade_edges():
    """[(child model, foreign key name)], parents' edges before their children's."""
    models = clinical_models()
    depth = {}

    def depth_of(model, seen=()):
        if model not in depth:
            parents = [model._meta.get_field(name).related_model for name in model.hidden_with]
            if model in seen:
                raise RuntimeError(f"hidden_with makes a cycle through {model.__name__}")
            depth[model] = 1 + max((depth_of(p, (*seen, model)) for p in parents), default=-1)
        return depth[model]

    return sorted(
        ((model, name) for model in models for name in model.hidden_with),
        key=lambda edge: (depth_of(edge[0]), edge[0]._meta.label, edge[1]),
    )


def client_id_of(record):
    if not record.client_path:
        return record.pk
    return type(record).all_objects.filter(pk=record.pk).values_list(f"{record.client_path}__id", flat=True).get()


@transaction.atomic
def delete_record(*, record, by, reason) -> Deletion:
    """Hide `record` and everything that hangs from it, as one recorded deletion."""
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("a deletion needs a reason")
    model = type(record)
    now = timezone.now()
    deletion = Deletion.objects.create(
        key=new_deletion_key(), at=now, by=by, reason=reason,
        record_type=model._meta.label_lower, record_id=record.pk,
        record_key=str(getattr(record, record.key_field)), client_id=client_id_of(record),
    )
    hide = {"deleted_at": now, "deleted_by": by, "deletion_reason": reason, "deletion": deletion}
    hidden = defaultdict(int)
    # Locked and re-read: a record deleted meanwhile in another tab is not deleted twice.
    if not model.all_objects.select_for_update().filter(pk=record.pk, deleted_at__isnull=True).update(**hide):
        raise DeletionError(f"This {model.record_name} was already deleted.")
    hidden[model._meta.label_lower] += 1
    hidden.update(hide_descendants(deletion, hide))
    deletion.hidden = dict(hidden)
    deletion.save(update_fields=["hidden"])
    caseload_changed.send(sender=model, client_id=deletion.client_id)
    record.deleted_at, record.deleted_by, record.deletion_reason, record.deletion = now, by, reason, deletion
    return deletion


def hide_descendants(deletion, hide) -> dict:
    """Hide the alive rows whose parent `deletion` hid, down every edge; rows per model."""
    hidden = defaultdict(int)
    for child, name in cascade_edges():
        n = child.all_objects.filter(deleted_at__isnull=True, **{f"{name}__deletion": deletion}).update(**hide)
        if n:
            hidden[child._meta.label_lower] += n
    return hidden


def stay_hidden_with_their_other_parent(deletion):
    """Rows `deletion` hid that hang from another record deleted since (an attempt tried
    in a later session, deleted after the rupture) must not come back with it: each
    joins that record's deletion instead, and comes back when that record does.
    Parents before children, so a row's own children follow it."""
    for child, name in cascade_edges():
        parent = child._meta.get_field(name).related_model
        child.all_objects.filter(deletion=deletion, **{f"{name}__deletion__isnull": False}).exclude(
            **{f"{name}__deletion": deletion}
        ).update(deletion=Subquery(parent.all_objects.filter(pk=OuterRef(name)).values("deletion")[:1]))


def restorable():
    """Deletions not yet undone whose record's parents are all still there to return to."""
    return Deletion.objects.filter(restored_at__isnull=True)


def new_deletion_key():
    return f"D-{secrets.token_hex(5)}"


@transaction.atomic
def restore_deletion(*, deletion, by, reason) -> dict:
    """Bring back exactly the rows `deletion` hid; rows per model."""
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("a restore needs a reason")
    deletion = Deletion.objects.select_for_update().get(pk=deletion.pk)
    if deletion.is_restored:
        raise DeletionError("This deletion was already undone.")
    model = apps.get_model(deletion.record_type)
    record = model.all_objects.get(pk=deletion.record_id)
    for name in model.hidden_with:
        parent = getattr(record, name)
        if parent is not None and parent.deleted_at is not None:
            blocking = parent.deletion
            raise DeletionError(
                f"Its {parent.record_name} {getattr(parent, parent.key_field)} is deleted too "
                f"(with {blocking.record_kind} {blocking.record_key}: {blocking.reason}): restore that first."
            )
    stay_hidden_with_their_other_parent(deletion)
    restored = {}
    for child in clinical_models():
        n = child.all_objects.filter(deletion=deletion).update(
            deleted_at=None, deleted_by=None, deletion_reason="", deletion=None
        )
        if n:
            restored[child._meta.label_lower] = n
    deletion.restored_at, deletion.restored_by, deletion.restore_reason = timezone.now(), by, reason
    deletion.save(update_fields=["restored_at", "restored_by", "restore_reason"])
    # Restored open ruptures are due reminders again.
    caseload_changed.send(sender=model, client_id=deletion.client_id)
    return restored

