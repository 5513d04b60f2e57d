"""A fixed-window count of requests per address, in the shared cache."""

import logging

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

logger = logging.getLogger(__name__)
WINDOW_SECONDS = 600


def allow(address: str | None) -> bool:
    """False once `address` made CLIENT_CHECK_RATE_LIMIT requests in this ten-minute window.

    With the cache down, requests are let through: the token stays unguessable, and a
    client must not be turned away by an outage of an optimisation.
    """
    bucket = int(timezone.now().timestamp()) // WINDOW_SECONDS
    key = f"client-check-rate:{address or 'unknown'}:{bucket}"
    try:
        cache.add(key, 0, timeout=WINDOW_SECONDS)
        count = cache.incr(key)
    except Exception as exc:  # a cache outage must not become a 500
        logger.warning("Client check rate limit skipped: cache unavailable (%s).", exc.__class__.__name__)
        return True
    return count <= settings.CLIENT_CHECK_RATE_LIMIT
