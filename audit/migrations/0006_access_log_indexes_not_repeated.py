"""The access log's foreign keys lose their single-column indexes: access_by_user and
access_by_client begin with the same columns and serve every lookup and PROTECT check,
and each index is one more write on every record page viewed.

Only the indexes go: AlterField alone would drop and re-add both foreign keys, which
re-checks every row of a table that grows with every page view.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

INDEXES = {
    "audit_accessevent_client_id_fdecd40e": "client_id",
    "audit_accessevent_user_id_368a285a": "user_id",
}


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0005_deletion"),
        ("therapy_sessions", "0006_recorded_deletions"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="accessevent",
                    name="client",
                    field=models.ForeignKey(blank=True, db_index=False, null=True,
                                            on_delete=django.db.models.deletion.PROTECT,
                                            related_name="+", to="therapy_sessions.client"),
                ),
                migrations.AlterField(
                    model_name="accessevent",
                    name="user",
                    field=models.ForeignKey(db_index=False, null=True,
                                            on_delete=django.db.models.deletion.PROTECT,
                                            related_name="+", to=settings.AUTH_USER_MODEL),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{name}" ON "audit_accessevent" ("{column}")',
                )
                for name, column in INDEXES.items()
            ],
        ),
    ]
