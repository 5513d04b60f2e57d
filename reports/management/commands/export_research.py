from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.log import record
from audit.models import Action
from reports.research import write_extract
from supervision.forms import EARLIEST, LATEST
from supervision.measures import Period


def _date(text):
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"{text!r} is not a date as YYYY-MM-DD") from exc
    if not EARLIEST <= day <= LATEST:
        raise CommandError(f"{text} is outside {EARLIEST} to {LATEST}")
    return day


class Command(BaseCommand):
    help = (
        "Write a de-identified research extract (Safe Harbor style: numbers drawn for this extract, "
        "no dates, no free text, no usernames) of the ruptures of held sessions in the period to DIR."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD")
        parser.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD")
        parser.add_argument("-o", "--output", required=True, metavar="DIR", help="An existing directory.")

    def handle(self, *args, start, end, output, **options):
        first, last = _date(start), _date(end)
        if first > last:
            raise CommandError("--to must be on or after --from")
        directory = Path(output)
        if not directory.is_dir():
            raise CommandError(f"{output} is not a directory")
        sizes = write_extract(Period(first, last), directory)
        record(None, Action.EXPORT, "research_extract",
               detail={"via": "command", "from": first.isoformat(), "to": last.isoformat(), "files": sizes})
        for name, size in sizes.items():
            self.stderr.write(f"Wrote {size} bytes to {directory / name}.")
