import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.log import record
from audit.models import Action
from exchange.exporter import export_caseload


class Command(BaseCommand):
    help = (
        "Export the whole caseload as a caseload file (version 2), to standard output or -o FILE."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--pseudonymised",
            action="store_true",
            help=(
                "No names, e-mails or notes; stable pseudonyms for usernames, codes and ids. Dates "
                "stay exact, so this is pseudonymised, not de-identified (see export_research)."
            ),
        )
        # The old name, kept working: it promised more than the file delivers.
        parser.add_argument("--deidentify", action="store_true", help="Deprecated: use --pseudonymised.")
        parser.add_argument(
            "-o", "--output", metavar="FILE", help="Write here instead of standard output."
        )

    def handle(self, *args, pseudonymised, deidentify, output, **options):
        if deidentify:
            self.stderr.write(
                "--deidentify is deprecated and will be removed: the file keeps exact dates and "
                "stable pseudonyms, so it is pseudonymised, not de-identified. Use --pseudonymised "
                "(same output), or export_research for a de-identified extract."
            )
        deidentify = pseudonymised or deidentify
        if output is None:
            counts = export_caseload(
                lambda text: self.stdout.write(text, ending=""), deidentify=deidentify
            )
        else:
            counts = self._to_file(Path(output), deidentify)
        record(
            None,
            Action.EXPORT,
            "caseload",
            detail={"via": "command", "pseudonymised": deidentify, "counts": counts},
        )
        if output is not None:
            summary = ", ".join(f"{n} {name}" for name, n in counts.items())
            self.stderr.write(f"Exported {summary} to {output}.")

    def _to_file(self, path, deidentify):
        # Written beside the target and renamed into place: an interrupted export never
        # leaves a half file under the name a backup script expects.
        try:
            # mkstemp makes the file readable by its owner only: it holds health information.
            fd, temporary = tempfile.mkstemp(
                dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
            )
        except OSError as exc:
            raise CommandError(f"cannot write to {path.parent}: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                counts = export_caseload(f.write, deidentify=deidentify)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return counts
