from io import StringIO

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.test.utils import override_settings

from sessions.demo import DEMO_PASSWORD


class Command(BaseCommand):
    help = "Set up the database, load the demo clinic and start the app (the README's first command)."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--no-serve", action="store_true", help="Set up only; do not start the server.")

    def handle(self, *args, addrport, no_serve, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_demo", stdout=self.stdout)
        # One sweep now, so the home pages show their reminders from the first sign-in.
        # Its e-mails would only flood this console before the logins: they are dropped.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
            call_command("flag_open_ruptures", stdout=StringIO())
        if "Manifest" in settings.STORAGES["staticfiles"]["BACKEND"]:
            # Production-like settings serve hashed files that must be collected first.
            call_command("collectstatic", interactive=False, verbosity=0)
        url = f"http://{addrport}/"
        self.stdout.write(self.style.SUCCESS(f"\nrupture-log demo: {url}"))
        self.stdout.write(f"  therapist   dlee       / {DEMO_PASSWORD}")
        self.stdout.write(f"  supervisor  mokafor    / {DEMO_PASSWORD}")
        self.stdout.write(f"  admin       admin      / {DEMO_PASSWORD}")
        required = ", ".join(settings.MFA_REQUIRED_ROLES) or "nobody"
        self.stdout.write(f"  (a second factor is required here for: {required}; they set up an authenticator app")
        self.stdout.write("   at first sign-in. The demo lets its therapist in with a password alone;")
        self.stdout.write("   production requires a second factor for every role: MFA_REQUIRED_ROLES)")
        database = settings.DATABASES["default"]
        where = "embedded PostgreSQL in .pgdata/" if "/" in database["HOST"] else database["HOST"]
        broker = "Redis" if settings.REDIS_URL else "in-process (no Redis needed)"
        self.stdout.write(f"  database: {where}; background tasks: {broker}\n")
        if not no_serve:
            call_command("runserver", addrport, use_reloader=False)
