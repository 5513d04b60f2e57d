"""/healthz: for the load balancer and docker's health checks, not for people.

Anonymous callers get the status alone: how the broker or the sweep is set up is a map
for an attacker. A signed-in admin or operator (past the second factor, see
MFARequiredMiddleware) also gets each check's answer.
"""

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from reminders.health import check_sweep


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis():
    if not settings.REDIS_URL:
        return "not configured (tasks run in-process)"
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


CHECKS = {"database": check_database, "redis": check_redis, "sweep": check_sweep}


@login_not_required
@never_cache
@require_GET
def healthz(request):
    report, healthy = {}, True
    for name, check in CHECKS.items():
        try:
            report[name] = check() or "ok"
        except Exception as exc:  # any failure is the answer here, not a 500
            report[name] = f"error: {exc.__class__.__name__}"
            healthy = False
    answer = {"status": "ok" if healthy else "error"}
    if _may_see_details(request.user):
        answer |= report
    return JsonResponse(answer, status=200 if healthy else 503)


def _may_see_details(user):
    return user.is_authenticated and (user.is_superuser or user.is_clinic_admin)
