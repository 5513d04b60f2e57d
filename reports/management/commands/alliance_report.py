import sys
from datetime import date

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Role, User
from audit.log import record
from audit.models import Action
from reports.formats import csv_bytes, pdf_bytes, xlsx_bytes
from reports.report import GROUPINGS, Filters, build
from reports.services import report_time
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
    help = "The clinic's alliance report for a period, as CSV (standard output by default), XLSX or PDF."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD")
        parser.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD")
        parser.add_argument("--by", choices=GROUPINGS, default="clinic")
        parser.add_argument("--format", choices=("csv", "xlsx", "pdf"), default="csv")
        parser.add_argument("--min-cell", type=int, default=None, metavar="N",
                            help="Show counts below N as <N (default REPORT_MIN_CELL; 0 turns it off).")
        parser.add_argument("--pseudonymise-therapists", action="store_true")
        parser.add_argument("--as-of", metavar="ISO-TIME",
                            help="The report's time (default now, to the minute): fixes the bytes for a re-run.")
        parser.add_argument("-o", "--output", metavar="FILE")

    def handle(self, *args, start, end, by, format, min_cell, pseudonymise_therapists, as_of, output, **options):
        first, last = _date(start), _date(end)
        if first > last:
            raise CommandError("--to must be on or after --from")
        if min_cell is not None and min_cell < 0:
            raise CommandError("--min-cell must be 0 or more")
        if format != "csv" and output is None:
            raise CommandError(f"a {format} file needs -o FILE")
        filters = Filters(
            period=Period(first, last), by=by, pseudonymise=pseudonymise_therapists,
            min_cell=settings.REPORT_MIN_CELL if min_cell is None else min_cell,
        )
        from datetime import datetime

        when = report_time(datetime.fromisoformat(as_of) if as_of else None)
        if when.tzinfo is None:
            raise CommandError("--as-of needs a time zone, e.g. 2026-12-01T06:00+00:00")
        report = build(_operator(), filters, as_of=when)
        if format == "csv":
            content = csv_bytes(report)
        elif format == "xlsx":
            content = xlsx_bytes(report)
        else:
            content = pdf_bytes(report, clinic=settings.REPORT_CLINIC_NAME)
        record(None, Action.EXPORT, "alliance_report", detail={**filters.as_dict(), "format": format,
                                                                "via": "command"})
        if output is None:
            sys.stdout.buffer.write(content)
            sys.stdout.flush()
        else:
            with open(output, "wb") as f:
                f.write(content)
            self.stderr.write(f"Wrote {len(content)} bytes to {output}.")


def _operator():
    # An admin account is not needed to run the command; the report says who made it.
    return User(username="operator", role=Role.ADMIN)
