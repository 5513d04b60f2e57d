"""Dashboard figures, kept for a short while.

A dashboard aggregates every session and rupture of a supervisor's caseloads, which
costs far more than an ordinary page; supervisors read it to prepare supervision, so
figures a minute old serve as well as live ones (the page says when they were taken).
What the supervisor does here shows at once: a supervision note starts a new
generation of that supervisor's figures. The cache only ever speeds things up: when
it cannot be reached, the figures are computed live.
"""

import hashlib
import logging

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from supervision.measures import measure

logger = logging.getLogger(__name__)


def measured(viewer, team, period, kind, sets):
    """measure(...) for `viewer`'s page, when the figures were taken, and their cache key."""
    seconds = settings.SUPERVISION_CACHE_SECONDS
    if seconds <= 0:
        return measure(team, period, kind, sets), timezone.now(), None
    key = _key(viewer, team, period, kind, sets)
    found = _safely(cache.get, key)
    if found is None:
        found = (measure(team, period, kind, sets), timezone.now())
        _safely(cache.set, key, found, seconds)
    return (*found, key)


def keep_fresh(viewers, team, period, kind, sets, *, seconds):
    """Compute the figures once and keep them for each of `viewers` for `seconds`: what
    the beat task (supervision.tasks) does for the whole clinic's, so that no admin's
    page has to scan the clinic's history. The page says when they were taken."""
    found = (measure(team, period, kind, sets), timezone.now())
    for viewer in viewers:
        _safely(cache.set, _key(viewer, team, period, kind, sets), found, seconds)
    return found


def rendered(key, render):
    """The HTML `render()` makes, kept as long as the figures it shows (key None: live).

    Drawing a dashboard (its table and a chart a row) costs more than reading cached
    figures, so the drawing is kept too, under the figures' own key and generation.
    """
    if key is None:
        return render()
    html = _safely(cache.get, key)
    if html is None:
        html = render()
        _safely(cache.set, key, html, settings.SUPERVISION_CACHE_SECONDS)
    return html


def forget(viewer):
    """Start a new generation of `viewer`'s figures: the next page computes them afresh."""
    _safely(cache.set, _generation_key(viewer), timezone.now().timestamp(), None)


def _key(viewer, team, period, kind, sets):
    generation = _safely(cache.get, _generation_key(viewer)) or 0
    what = repr((sorted(team), period.start, period.end, kind, sets, generation))
    return f"supervision:{viewer.pk}:{hashlib.sha256(what.encode()).hexdigest()}"


def _generation_key(viewer):
    return f"supervision:{viewer.pk}:generation"


def _safely(call, *args):
    try:
        return call(*args)
    except Exception as exc:  # a cache outage must never become a 500
        logger.warning("supervision cache unavailable: %s", exc.__class__.__name__)
        return None
