import json
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from audit.models import AccessEvent, Action


class Command(BaseCommand):
    help = (
        "What was done to people's accounts, newest first: e-mail addresses changed, "
        "password links sent and second factors removed, by whom, for whom and from where. "
        "An operator's review of the clinic admins (README, Security)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30, help="how far back (default 30)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="one JSON object per line")

    def handle(self, *args, days, as_json, **options):
        since = timezone.now() - timedelta(days=max(days, 0))
        events = (
            AccessEvent.objects.filter(action=Action.ACCOUNT, at__gte=since)
            .select_related("user").order_by("-at", "-pk")
        )
        shown = 0
        for event in events.iterator():
            row = {
                "at": timezone.localtime(event.at).isoformat(timespec="seconds"),
                "by": event.user.get_username() if event.user else "a command",
                "what": event.what,
                "account": event.key,
                "from": event.ip or "",
            }
            self.stdout.write(json.dumps(row, ensure_ascii=False) if as_json else "  ".join(
                [row["at"], f"{row['by']:<16}", f"{row['what']:<14}", f"{row['account']:<16}", row["from"]]
            ).rstrip())
            shown += 1
        if not as_json:
            self.stderr.write(f"{shown} account event{'s' if shown != 1 else ''} in the last {days} days.")
