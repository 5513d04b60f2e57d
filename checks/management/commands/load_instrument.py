from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from checks.instruments import load_file
from checks.models import Instrument


class Command(BaseCommand):
    help = (
        "Add instruments (e.g. one the clinic holds a licence for) from a JSON file. The whole "
        "file is checked first; with any problem, every problem is listed and nothing is written."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the instrument file (JSON)")

    def handle(self, *args, **options):
        try:
            data = Path(options["file"]).read_bytes()
        except OSError as exc:
            raise CommandError(f"{options['file']}: cannot read ({exc.strerror})") from None
        with transaction.atomic():
            made, problems = load_file(data, instrument_model=Instrument)
        if problems:
            for problem in problems:
                self.stderr.write(str(problem))
            raise CommandError(f"{len(problems)} problem(s); nothing was loaded.")
        for instrument in made:
            self.stdout.write(f"Loaded {instrument} with {len(instrument.items)} items.")
