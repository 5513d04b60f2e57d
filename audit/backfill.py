"""For migrations: give rows deleted before deletions were recorded a Deletion, and cascade.

Called with historical models (`apps`), so it knows nothing of the live classes: each
migration names its model, the lookup to its client, its key and its parents.
"""

import secrets


def backfill(apps, label, *, client, key, parents=()):
    """Record a deletion for each deleted row of `label`, then hide alive rows of deleted parents.

    `client` is the lookup from the row to its client's id ("id" for clients), `key` the
    field naming the row, `parents` the foreign keys whose deletion hides the row.
    """
    Deletion = apps.get_model("audit", "Deletion")
    model = apps.get_model(label)
    rows = model._base_manager.filter(deleted_at__isnull=False, deletion__isnull=True)
    for pk, deleted_at, by, reason, client_id, name in rows.values_list(
        "pk", "deleted_at", "deleted_by", "deletion_reason", client, key
    ):
        deletion = Deletion.objects.create(
            key=f"D-{secrets.token_hex(5)}", at=deleted_at, by_id=by, reason=reason or "deleted",
            record_type=model._meta.label_lower, record_id=pk, record_key=str(name), client_id=client_id,
            hidden={model._meta.label_lower: 1},
        )
        model._base_manager.filter(pk=pk).update(deletion=deletion, deletion_reason=reason or "deleted")
    for parent in parents:
        # Before cascades existed, children of a deleted record stayed visible: hide them now.
        for deletion_id, at, by, reason in (
            model._base_manager.filter(deleted_at__isnull=True, **{f"{parent}__deleted_at__isnull": False})
            .values_list(f"{parent}__deletion", f"{parent}__deleted_at", f"{parent}__deleted_by",
                         f"{parent}__deletion_reason")
            .distinct()
        ):
            model._base_manager.filter(deleted_at__isnull=True, **{f"{parent}__deletion": deletion_id}).update(
                deleted_at=at, deleted_by=by, deletion_reason=reason, deletion=deletion_id
            )
