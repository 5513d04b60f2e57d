from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.log import record
from audit.models import Action
from checks import services
from checks.views import client_url
from sessions.models import TherapySession


class Command(BaseCommand):
    help = (
        "Print a one-time link to the client's alliance check of a session (SESSION_KEY: its key "
        "in caseload files), for clinics that deliver links through their own patient portal. "
        "The app sends nothing itself."
    )

    def add_arguments(self, parser):
        parser.add_argument("session_key")

    def handle(self, *args, **options):
        session = (
            TherapySession.objects.select_related("client").filter(key=options["session_key"]).first()
        )
        if session is None:
            raise CommandError(f"{options['session_key']!r}: no session with this key")
        if not services.may_ask_client(session):
            raise CommandError(
                f"{session.key}: a link is for a session of today, or one held in the last "
                f"{settings.CLIENT_CHECK_HOURS} hours, that the client has not answered yet"
            )
        _, token = services.make_client_link(session=session, by=None)
        record(None, Action.LINK, "client_check", key=session.key, client=session.client,
               detail={"via": "command"})
        self.stdout.write(client_url(None, token))
