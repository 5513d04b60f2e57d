"""Signals from the bottom layer, so that apps above can follow changes without being imported.

`caseload_changed` is sent (with `client_id`) whenever a client's clinical records change
in a way reminders care about: a rupture logged, edited or repaired, a deletion or a
restore. The reminders app answers with a sweep of that client once the transaction
commits (reminders.apps).
"""

from django.dispatch import Signal

caseload_changed = Signal()
