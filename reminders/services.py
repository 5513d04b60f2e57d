import logging

from django.db import transaction

from reminders.tasks import sweep

logger = logging.getLogger(__name__)


def enqueue_sweep(*, client_id: int) -> None:
    """Ask for a sweep of one client once the current transaction commits.

    For speed only: the periodic sweep finds the same flags a few minutes later, so a
    broker that is down must never turn a saved rupture into an error page.
    """
    transaction.on_commit(lambda: _send(client_id))


def sweep_on_change(sender, *, client_id, **kwargs):
    """audit.signals.caseload_changed: the client's reminders follow the change."""
    enqueue_sweep(client_id=client_id)


def _send(client_id):
    try:
        sweep.delay(client_id=client_id)
    except Exception as exc:  # any broker failure: the periodic sweep catches up
        # The class name only: a broker's message can carry its URL and password.
        logger.warning("Could not enqueue a reminder sweep (%s); the periodic sweep will catch up.",
                       exc.__class__.__name__)
