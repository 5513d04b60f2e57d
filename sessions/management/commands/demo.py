import os
import secrets
import sys
from io import StringIO

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.test.utils import override_settings

from sessions.demo import DEMO_PASSWORD

STOP_COMMAND = "uv run python -m config.embedded_db stop"


class Command(BaseCommand):
    help = (
        "Set up the database, load the demo clinic and start the app at ADDR:PORT "
        "(default 127.0.0.1:8000), with debug off as in use. --reset starts from scratch."
    )

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000",
                            help="Where to serve, e.g. 8001 or 0.0.0.0:8000 (default 127.0.0.1:8000).")
        parser.add_argument("--no-serve", action="store_true", help="Set up only; do not start the server.")
        parser.add_argument("--reset", action="store_true",
                            help="Empty the embedded database first and build the demo clinic anew.")

    def handle(self, *args, addrport, no_serve, reset, **options):
        addrport = addrport if ":" in addrport else f"127.0.0.1:{addrport}"
        if reset:
            self._reset()
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_demo", stdout=self.stdout)
        # One sweep now, so the home pages show their reminders from the first sign-in.
        # Its e-mails would only flood this console before the logins: they are dropped.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
            call_command("flag_open_ruptures", stdout=StringIO())
        self._print_logins(addrport, serving=not no_serve)
        if not no_serve:
            self._serve(addrport)

    def _reset(self):
        if not settings.EMBEDDED_DATABASE:
            raise CommandError(
                "--reset empties only the embedded demo database, and DATABASE_URL points elsewhere: "
                "nothing was changed."
            )
        from config.embedded_db import reset_embedded

        connections.close_all()
        reset_embedded()
        self.stdout.write("Emptied the embedded database: building the demo clinic from scratch.")

    def _print_logins(self, addrport, serving=True):
        self.stdout.write(self.style.SUCCESS(f"\nrupture-log demo: http://{addrport}/"))
        self.stdout.write(f"  therapist   dlee       / {DEMO_PASSWORD}")
        self.stdout.write(f"  supervisor  mokafor    / {DEMO_PASSWORD}")
        self.stdout.write(f"  admin       admin      / {DEMO_PASSWORD}")
        # Said of the server that is about to start, whose settings are not this process's.
        roles = (
            [r.strip() for r in serving_environment(addrport)["MFA_REQUIRED_ROLES"].split(",") if r.strip()]
            if serving else list(settings.MFA_REQUIRED_ROLES)
        )
        self.stdout.write(f"  (a second factor is required here for: {', '.join(roles) or 'nobody'}; they set up")
        self.stdout.write("   an authenticator app at first sign-in. Production requires one of every role:")
        self.stdout.write("   MFA_REQUIRED_ROLES)")
        database = settings.DATABASES["default"]
        where = "embedded PostgreSQL in .pgdata/" if settings.EMBEDDED_DATABASE else database["HOST"]
        broker = "Redis" if settings.REDIS_URL else "in-process (no Redis needed)"
        self.stdout.write(f"  database: {where}; background tasks: {broker}")
        if settings.EMBEDDED_DATABASE:
            self.stdout.write(f"  the embedded PostgreSQL keeps running after this; stop it with: {STOP_COMMAND}")
        self.stdout.write("")

    def _serve(self, addrport):
        # Settings are read once, at start: the server runs in a fresh process with
        # debug off, so that errors look as they will in use.
        env = serving_environment(addrport)
        manage = os.path.join(settings.BASE_DIR, "manage.py")
        os.execve(sys.executable, [sys.executable, manage, "runserver", addrport, "--noreload"], env)


def serving_environment(addrport, environ=None):
    """The demo server's environment: debug off, static files served by WhiteNoise from
    the source folders, plain HTTP on this machine (no HTTPS redirect, no secure-only
    cookies), a second factor for supervisors and admins, and a secret key and the
    site's address of its own unless they are set."""
    env = dict(os.environ if environ is None else environ)
    host = addrport.rsplit(":", 1)[0].strip("[]")
    hosts = "*" if host in ("0.0.0.0", "::") else ",".join(sorted({host, "localhost", "127.0.0.1", "[::1]"}))
    env.update({
        "DJANGO_DEBUG": "0",
        "DJANGO_MANIFEST_STATIC": "0",
        "DJANGO_SSL_REDIRECT": "0",
        "DJANGO_SECURE_COOKIES": "0",
        "DJANGO_HSTS_SECONDS": "0",
        "DJANGO_ALLOWED_HOSTS": env.get("DJANGO_ALLOWED_HOSTS") or hosts,
    })
    env.setdefault("DJANGO_SECRET_KEY", "demo-" + secrets.token_urlsafe(48))
    # Reminder e-mails link to the address this server answers at. Served on every
    # interface, that address is not known here, and the system check asks for it.
    if hosts != "*":
        env.setdefault("DJANGO_SITE_URL", f"http://{addrport}")
    # Debug off would require a second factor of every role: the demo keeps the
    # debug-mode rule, so its therapist signs in with a password alone.
    env.setdefault("MFA_REQUIRED_ROLES", "supervisor,admin")
    return env
