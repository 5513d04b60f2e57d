"""Celery's side of the sweep: a thin wrapper taking ids and strings, never records."""

from datetime import datetime

from celery import shared_task

from reminders import sweep as sweeping


@shared_task(name="reminders.sweep")
def sweep(client_id: int | None = None, now_iso: str | None = None) -> dict:
    now = datetime.fromisoformat(now_iso) if now_iso else None
    # Counts only: the worker logs what a task returns, and keys or case codes do not
    # belong in logs.
    return sweeping.sweep(now=now, client_id=client_id).counts()
