"""Writes that span more than one row or model, each in one transaction."""

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from audit.signals import caseload_changed
from ruptures.models import RepairAttempt, Risk, RuptureEvent
from sessions.models import SessionStatus, TherapySession

# The fields a therapist edits on the rupture form, in the order the form shows them.
EDITABLE_FIELDS = (
    "kind", "actor", "markers", "intensity", "minute", "source", "internal_signals",
    "internal_signals_other", "risk", "declined_relational_talk", "noticed", "hypothesis", "plan",
)


@dataclass(frozen=True)
class Change:
    field: str
    theirs: object
    yours: object


class EditConflict(Exception):
    """Someone saved the rupture after this edit began; nothing was written."""

    def __init__(self, current: RuptureEvent, changes: list[Change]):
        super().__init__(f"rupture {current.pk} changed since version was read")
        self.current = current
        self.changes = changes


@transaction.atomic
def log_rupture(*, session: TherapySession, data: dict, by) -> RuptureEvent:
    # Logging a rupture says the session took place; a past session still marked
    # scheduled is settled here rather than making the therapist do it first.
    if session.status == SessionStatus.SCHEDULED:
        TherapySession.objects.filter(pk=session.pk).update(status=SessionStatus.HELD)
        session.status = SessionStatus.HELD
    fields = {name: data[name] for name in EDITABLE_FIELDS if name in data}
    if fields.get("risk", Risk.NONE) != Risk.NONE:
        fields["risk_recorded_at"] = timezone.now()
    # The sweep this asks for also tells the supervisor at once of a risk (domain 6b).
    caseload_changed.send(sender=RuptureEvent, client_id=session.client_id)
    return RuptureEvent.objects.create(session=session, created_by=by, updated_by=by, **fields)


@transaction.atomic
def update_rupture(*, rupture: RuptureEvent, data: dict, expected_version: int, by) -> RuptureEvent:
    fields = {name: data[name] for name in EDITABLE_FIELDS if name in data}
    _conditional_update(rupture, fields, expected_version, by)
    caseload_changed.send(sender=RuptureEvent, client_id=rupture.session.client_id)
    return rupture


@transaction.atomic
def set_repair_status(*, rupture: RuptureEvent, status: str, expected_version: int, by) -> RuptureEvent:
    _conditional_update(rupture, {"repair_status": status}, expected_version, by)
    caseload_changed.send(sender=RuptureEvent, client_id=rupture.session.client_id)
    return rupture


@transaction.atomic
def record_attempt(*, rupture: RuptureEvent, session: TherapySession, strategy: str,
                   outcome: str, note: str, by, stage_reached: str = "") -> RepairAttempt:
    attempt = RepairAttempt.objects.create(
        rupture=rupture, session=session, strategy=strategy, outcome=outcome, note=note,
        stage_reached=stage_reached, created_by=by,
    )
    # The newest attempt's outcome is the rupture's status. Attempts add to the record
    # rather than overwrite it, so no version check, but the version still moves on so
    # an edit begun before this attempt is told about it.
    RuptureEvent.objects.filter(pk=rupture.pk).update(
        repair_status=outcome, version=F("version") + 1, updated_by=by, updated_at=timezone.now()
    )
    rupture.refresh_from_db()
    caseload_changed.send(sender=RuptureEvent, client_id=session.client_id)
    return attempt


def _risk_recorded(fields, now):
    """The risk's time for an edit (6b): now when the edit sets a new risk, kept when the
    risk stays as it was, none without a risk. Read from the row being updated, so it
    holds whoever saved in between."""
    if "risk" not in fields:
        return {}
    if fields["risk"] == Risk.NONE:
        return {"risk_recorded_at": None}
    return {"risk_recorded_at": Case(
        When(risk=fields["risk"], then=F("risk_recorded_at")), default=Value(now),
    )}


def _conditional_update(rupture, fields, expected_version, by):
    """UPDATE ... WHERE version = expected: the second of two concurrent saves loses loudly."""
    if type(expected_version) is not int:
        # Never "the version in hand": that would let an edit overwrite one it never saw.
        raise ValueError("an edit names the version it started from")
    now = timezone.now()
    changed = RuptureEvent.objects.filter(pk=rupture.pk, version=expected_version).update(
        **fields, **_risk_recorded(fields, now), version=F("version") + 1, updated_by=by, updated_at=now
    )
    if not changed:
        current = RuptureEvent.objects.select_related("updated_by").get(pk=rupture.pk)
        changes = [
            Change(name, getattr(current, name), value)
            for name, value in fields.items()
            if getattr(current, name) != value
        ]
        raise EditConflict(current, changes)
    rupture.refresh_from_db()
