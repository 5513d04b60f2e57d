"""Sign-in throttling: a (username, address) pair, and an address across usernames.

django-axes counts failures per lockout parameter and compares the largest count with a
single limit; an address guessing one password across many usernames (spraying) never
reaches five on any one of them. This handler adds the address's failures over all
usernames, measured against their own, higher limit (LOGIN_ADDRESS_FAILURE_LIMIT).
A successful sign-in clears only its own pair, so knowing one account's password does
not reset the address's count.
"""

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum


def address_failures(request):
    address = getattr(request, "axes_ip_address", None)
    if not address:
        return 0
    recent = AccessAttempt.objects.filter(ip_address=address, attempt_time__gte=get_cool_off_threshold(request))
    return recent.aggregate(n=Sum("failures_since_start"))["n"] or 0


class PairAndAddressHandler(AxesDatabaseHandler):
    def get_failures(self, request, credentials=None) -> int:
        pair = super().get_failures(request, credentials)
        if pair < settings.AXES_FAILURE_LIMIT and address_failures(request) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT:
            # Reported as a full pair count so that axes locks, and says so, as for a pair.
            return settings.AXES_FAILURE_LIMIT
        return pair
