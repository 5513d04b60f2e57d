from django.db import migrations

# A supervision note is part of the clinical record: a later discussion adds a note, it
# never rewrites or removes one. The refusing function is the access log's (audit 0002).
CREATE = """
CREATE TRIGGER supervision_note_append_only
    BEFORE UPDATE OR DELETE ON supervision_supervisionnote
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
"""

DROP = "DROP TRIGGER IF EXISTS supervision_note_append_only ON supervision_supervisionnote;"


class Migration(migrations.Migration):
    dependencies = [
        ("supervision", "0001_initial"),
        ("audit", "0002_append_only"),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
