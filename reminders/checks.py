from django.conf import settings
from django.core.checks import Error, Warning, register

DEFAULT_SITE_URL = "http://127.0.0.1:8000"


@register()
def check_reminder_settings(app_configs, **kwargs):
    problems = []
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    # Redis hands an unacknowledged task to another worker after the visibility timeout:
    # a task still running then, or a sweep interval longer than it, would run twice.
    if settings.CELERY_TASK_TIME_LIMIT >= visibility:
        problems.append(Error(
            "CELERY_TASK_TIME_LIMIT must be shorter than the broker's visibility_timeout.",
            id="reminders.E001",
        ))
    if settings.REMINDER_SWEEP_MINUTES * 60 >= visibility:
        problems.append(Error(
            "REMINDER_SWEEP_MINUTES must be shorter than the broker's visibility_timeout.",
            id="reminders.E002",
        ))
    if not settings.DEBUG and settings.SITE_URL == DEFAULT_SITE_URL:
        problems.append(Warning(
            "DJANGO_SITE_URL is not set: reminder e-mails link to http://127.0.0.1:8000/.",
            hint="Set DJANGO_SITE_URL to the address people open the app at.",
            id="reminders.W001",
        ))
    return problems
