import contextlib
import json
import sys
from datetime import datetime, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from reminders.sweep import sweep


class Command(BaseCommand):
    help = (
        "Run one reminder sweep, exactly as the periodic task does, and print the flags it "
        "raised. A second run with the same --now raises nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--now", help="the sweep's time T, ISO 8601 (default: now); "
                            "without an offset, in the clinic's time zone")
        parser.add_argument("--window", help=f"hours after T to look at (default: {settings.REMINDER_WINDOW_HOURS})")
        parser.add_argument("--json", action="store_true", help="print the raised flags as a JSON list")

    def handle(self, *args, **options):
        now, window = parse_now(options["now"]), parse_window(options["window"])
        try:
            timezone.localtime(now or timezone.now()) + (window or timedelta(hours=settings.REMINDER_WINDOW_HOURS))
        except (OverflowError, ValueError):
            raise CommandError("--now and --window: the window must lie within the years 1 to 9999") from None
        if options["json"]:
            # JSON alone on stdout, whatever the e-mail backend: the console backend
            # writes to sys.stdout, so while the sweep sends, that is stderr.
            with contextlib.redirect_stdout(sys.stderr):
                result = sweep(now=now, window=window)
        else:
            result = sweep(now=now, window=window)
        if options["json"]:
            self.stdout.write(json.dumps([flag.as_json() for flag in result.raised], indent=2, ensure_ascii=False))
            return
        for flag in result.raised:
            escalated = "  escalated" if flag.escalated else ""
            kind = "" if flag.reason == "rupture" else f"  {flag.reason}"
            session = flag.session or "-"
            self.stdout.write(f"{flag.source}  {session}  {flag.client}  {flag.therapist}{escalated}{kind}")
        counts = result.counts()
        self.stdout.write(
            f"{counts['raised']} flag(s) raised, {counts['escalated']} escalated; "
            f"{counts['emails']} e-mail(s) sent, {counts['failed']} failed."
        )


def parse_now(raw):
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise CommandError(
            f"--now {raw!r}: expected an ISO 8601 date and time, e.g. 2026-03-02T09:00 or 2026-03-02T09:00:00+01:00"
        ) from None
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def parse_window(raw):
    if raw is None:
        return None
    try:
        hours = int(raw)
    except ValueError:
        raise CommandError(f"--window {raw!r}: expected a whole number of hours, e.g. 48") from None
    if hours < 1:
        raise CommandError(f"--window {raw!r}: must be at least 1 hour")
    return timedelta(hours=hours)
