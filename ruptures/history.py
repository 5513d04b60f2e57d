"""A rupture's change history, read from the rows the database triggers wrote.

django-pghistory snapshots the whole row on every insert and update, so the history
holds even for bulk updates and raw SQL; here consecutive snapshots are compared to
say what changed, by whom (the request's user, kept in the event's context).
"""

from dataclasses import dataclass, field
from datetime import datetime

from accounts.models import NAME_FIELDS, User
from audit.models import Deletion
from ruptures.models import RuptureEvent

# Bookkeeping that changes with every save and says nothing a reader needs; deletions
# are told from the Deletion they belong to, with the record they started from.
SKIPPED = {"pgh_id", "pgh_created_at", "pgh_label", "pgh_obj", "pgh_context", "id", "version",
           "created_at", "created_by", "updated_at", "updated_by", "key", "risk_recorded_at",
           "deleted_at", "deleted_by", "deletion_reason", "deletion"}

# Apps above this one add their own entries (supervision notes) by registering a
# function rupture -> [Entry] here from their AppConfig.ready(): the history does not
# import them, so the layers stay one-way.
SOURCES = []


def register(source):
    if source not in SOURCES:
        SOURCES.append(source)
    return source


@dataclass
class Entry:
    at: datetime
    by: str
    what: str
    changes: list[tuple[str, object, object]] = field(default_factory=list)
    comment: str = ""


def history_of(rupture) -> list[Entry]:
    Event = RuptureEvent.pgh_event_models["update"]
    events = list(Event.objects.filter(pgh_obj_id=rupture.pk).select_related("pgh_context").order_by("pgh_id"))
    user_ids = {(e.pgh_context.metadata or {}).get("user") for e in events if e.pgh_context}
    names = _names([i for i in user_ids if i])
    fields = [f for f in Event._meta.concrete_fields if f.name not in SKIPPED]
    entries, previous = [], None
    if not events or events[0].pgh_label != "insert":
        # Rows made in bulk (the demo clinic) have no creation snapshot; the row says who.
        # (The database stamps events with its transaction's start, which may read earlier.)
        logged_at = min([rupture.created_at, *(e.pgh_created_at for e in events[:1])])
        entries.append(Entry(logged_at, str(rupture.created_by), "logged"))
    for event in events:
        by = names.get((event.pgh_context.metadata or {}).get("user")) if event.pgh_context else None
        by = by or "the system (no signed-in user)"
        if event.pgh_label == "insert":
            entries.append(Entry(event.pgh_created_at, by, "logged"))
        elif previous is None:
            entries.append(Entry(event.pgh_created_at, by, "changed (the values before were not recorded)"))
        else:
            changes = [
                (f.verbose_name, _shown(f, previous), _shown(f, event))
                for f in fields
                if getattr(previous, f.attname) != getattr(event, f.attname)
            ]
            if changes:
                entries.append(Entry(event.pgh_created_at, by, "changed", changes))
        previous = event
    deletion_ids = {e.deletion_id for e in events if e.deletion_id} | ({rupture.deletion_id} - {None})
    entries += _deletion_entries(deletion_ids)
    for source in SOURCES:
        entries += source(rupture)
    return sorted(entries, key=lambda entry: entry.at)


def _names(user_ids):
    # Rows made in bulk or by commands name nobody: no query for them (most ruptures).
    if not user_ids:
        return {}
    return {u.pk: str(u) for u in User.objects.filter(pk__in=user_ids).only(*NAME_FIELDS)}


def _deletion_entries(deletion_ids):
    entries = []
    if not deletion_ids:  # a rupture never deleted (most): no query to build for nothing
        return entries
    for d in Deletion.objects.filter(pk__in=deletion_ids).select_related("by", "restored_by"):
        what = "deleted" if d.record_type == RuptureEvent._meta.label_lower else (
            f"deleted with its {d.record_kind} {d.record_key}"
        )
        entries.append(Entry(d.at, str(d.by or "a command"), what, comment=d.reason))
        if d.restored_at:
            restorer = str(d.restored_by or "a command")
            entries.append(Entry(d.restored_at, restorer, "restored", comment=d.restore_reason))
    return entries


def _shown(model_field, event):
    value = getattr(event, model_field.attname)
    if model_field.choices and not isinstance(value, list):
        return dict(model_field.flatchoices).get(value, value)
    if isinstance(value, list):
        labels = dict(model_field.base_field.flatchoices) if hasattr(model_field, "base_field") else {}
        return ", ".join(str(labels.get(v, v)) for v in value) or "—"
    return "—" if value in (None, "") else value
