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
    if not settings.DEBUG and not settings.RISK_PROTOCOL_URL:
        problems.append(Warning(
            "RISK_PROTOCOL_URL is not set: a rupture with a risk concern names the protocol "
            "but cannot link to it.",
            hint="Set RISK_PROTOCOL_NAME and RISK_PROTOCOL_URL to the clinic's own risk protocol.",
            id="reminders.W002",
        ))
    if settings.RISK_PROTOCOL_URL and not settings.RISK_PROTOCOL_URL.startswith(("https://", "http://", "/")):
        problems.append(Error(
            "RISK_PROTOCOL_URL must be an http(s) address or a path on this site.",
            id="reminders.E003",
        ))
    if settings.STALLED_ESCALATE_DAYS < settings.STALLED_AFTER_DAYS:
        problems.append(Error(
            "STALLED_ESCALATE_DAYS must not be shorter than STALLED_AFTER_DAYS.",
            id="reminders.E004",
        ))
    return problems
