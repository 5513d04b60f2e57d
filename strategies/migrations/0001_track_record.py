from django.db import migrations, models

from strategies import rollup


def backfill(apps, schema_editor):
    rollup.rebuild(schema_editor.connection)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("ruptures", "0004_statement_level_history"),
    ]

    operations = [
        migrations.CreateModel(
            name="TrackRecord",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(max_length=16)),
                ("strategy", models.CharField(max_length=32)),
                ("outcome", models.CharField(max_length=24)),
                ("attempts", models.IntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("kind", "strategy", "outcome"), name="track_record_one_row"),
                ],
            },
        ),
        migrations.RunSQL(rollup.INSTALL, rollup.UNINSTALL),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
