import time
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from sessions.demo import DEMO_PASSWORD, SCALES, build_demo_clinic, demo_exists


class Command(BaseCommand):
    help = "Create a realistic demo clinic (idempotent: does nothing if one exists)."

    def add_arguments(self, parser):
        parser.add_argument("--scale", choices=sorted(SCALES), default="small")
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument(
            "--as-of", type=_instant, default=None, metavar="ISO-TIME",
            help="the moment the history is dated from (default: now), e.g. 2026-12-04T16:27:00+00:00; "
                 "two clinics built from the same moment hold the same caseloads",
        )

    def handle(self, *args, scale, seed, as_of, **options):
        if demo_exists():
            self.stdout.write("Demo clinic already present; nothing to do.")
            return
        started = time.perf_counter()
        counts = build_demo_clinic(SCALES[scale], seed=seed, now=as_of)
        took = time.perf_counter() - started
        summary = ", ".join(f"{n} {what}" for what, n in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Demo clinic ({scale}) created in {took:.1f}s: {summary}."))
        self.stdout.write(f"Every demo login uses the password {DEMO_PASSWORD!r}.")


def _instant(text):
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--as-of: {text!r} is not a date and time such as 2026-12-04T16:27:00+00:00") from None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    if moment > timezone.now():
        raise CommandError("--as-of: the demo's history cannot be dated from the future")
    return moment
