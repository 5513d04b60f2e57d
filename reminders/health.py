from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from reminders.models import SweepHeartbeat


class SweepNeverRan(Exception):
    pass


class SweepStale(Exception):
    pass


def check_sweep():
    """The periodic sweep finished within the last three intervals."""
    if not settings.REDIS_URL:
        return "not scheduled (no broker: sweeps run in-process when records are saved)"
    finished = SweepHeartbeat.objects.filter(pk=1).values_list("finished_at", flat=True).first()
    if finished is None:
        raise SweepNeverRan()
    if timezone.now() - finished > timedelta(minutes=3 * settings.REMINDER_SWEEP_MINUTES):
        raise SweepStale()
