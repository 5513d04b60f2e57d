from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from audit.deletion import DeletionError, clinical_models, restore_deletion


def _kinds():
    return {m.record_name: m for m in clinical_models() if m.key_field != "pk"}


class Command(BaseCommand):
    help = (
        "Undo the deletion of a client, session or rupture, by its key: it comes back with "
        "exactly what was deleted with it. The restore is recorded with who and why."
    )

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=sorted(_kinds()), help="what the key names")
        parser.add_argument("key", help="case code, session id or rupture id, as in caseload files")
        parser.add_argument("--reason", required=True, help="why it is restored (kept in the history)")
        parser.add_argument("--by", required=True, metavar="USERNAME", help="the clinic admin restoring it")

    def handle(self, *args, kind, key, reason, by, **options):
        admin = get_user_model().objects.filter(username=by, is_active=True).first()
        if admin is None or not admin.is_clinic_admin:
            raise CommandError(f"--by {by!r}: not an active clinic admin")
        if not reason.strip():
            raise CommandError("--reason: say why the record is restored")
        model = _kinds()[kind]
        record = model.all_objects.filter(**{model.key_field: key}).select_related("deletion").first()
        if record is None:
            raise CommandError(f"no {kind} {key!r}")
        deletion = record.deletion
        if deletion is None:
            raise CommandError(f"{kind} {key!r} is not deleted")
        if (deletion.record_type, deletion.record_id) != (model._meta.label_lower, record.pk):
            raise CommandError(
                f"{kind} {key!r} was deleted with its {deletion.record_kind} {deletion.record_key}: "
                f"restore that {deletion.record_kind}"
            )
        try:
            restored = restore_deletion(deletion=deletion, by=admin, reason=reason)
        except DeletionError as exc:
            raise CommandError(str(exc)) from None
        summary = ", ".join(f"{n} {label}" for label, n in sorted(restored.items()))
        self.stdout.write(f"Restored {kind} {key} ({summary}).")
