import time

from django.core.management.base import BaseCommand

from sessions.demo import DEMO_PASSWORD, SCALES, build_demo_clinic, demo_exists


class Command(BaseCommand):
    help = "Create a realistic demo clinic (idempotent: does nothing if one exists)."

    def add_arguments(self, parser):
        parser.add_argument("--scale", choices=sorted(SCALES), default="small")
        parser.add_argument("--seed", type=int, default=2026)

    def handle(self, *args, scale, seed, **options):
        if demo_exists():
            self.stdout.write("Demo clinic already present; nothing to do.")
            return
        started = time.perf_counter()
        counts = build_demo_clinic(SCALES[scale], seed=seed)
        took = time.perf_counter() - started
        summary = ", ".join(f"{n} {what}" for what, n in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Demo clinic ({scale}) created in {took:.1f}s: {summary}."))
        self.stdout.write(f"Every demo login uses the password {DEMO_PASSWORD!r}.")
