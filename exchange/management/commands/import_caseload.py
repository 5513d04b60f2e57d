import sys

from django.core.management.base import BaseCommand, CommandError

from exchange.importer import run_import


class Command(BaseCommand):
    help = (
        "Import a caseload file (format: caseload, version 1 or 2): all of it in one transaction, "
        "or nothing and a list of every problem with its JSON path."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The JSON file, or - for standard input.")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Check the file and say what would change; write nothing.",
        )
        parser.add_argument(
            "--allow-role-changes",
            action="store_true",
            help="Let the file change the role of people already in the database (listed first).",
        )

    def handle(self, *args, file, dry_run, allow_role_changes, **options):
        try:
            if file == "-":
                data = sys.stdin.buffer.read()
            else:
                with open(file, "rb") as f:
                    data = f.read()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from exc
        result = run_import(data, dry_run=dry_run, allow_role_changes=allow_role_changes)
        if result.problems:
            for problem in result.problems:
                self.stderr.write(str(problem))
            n = len(result.problems)
            raise CommandError(f"{n} problem{'s' if n != 1 else ''} found; nothing was imported.")
        verb = "Would change" if dry_run else "Imported"
        self.stdout.write(
            f"{verb}:"
            if result.changes or dry_run
            else "Nothing to change: the database already holds everything in the file."
        )
        for username, before, after in result.role_changes:
            self.stdout.write(f"  role of {username}: {before} -> {after}")
        for name, tally in result.counts.items():
            if tally.created or tally.updated or tally.unchanged:
                self.stdout.write(
                    f"  {name:<12} {tally.created:>7} new  {tally.updated:>7} updated  "
                    f"{tally.unchanged:>7} unchanged"
                )
        if dry_run:
            self.stdout.write("Dry run: nothing was written.")
