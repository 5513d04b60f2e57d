"""Load the project's own alliance check, version 1 (therapist and client), from its data file."""

from django.db import migrations


def load(apps, schema_editor):
    from checks.instruments import SHIPPED, load_file

    _, problems = load_file(SHIPPED.read_bytes(), instrument_model=apps.get_model("checks", "Instrument"))
    if problems:
        raise RuntimeError("the shipped instrument file is invalid: " + "; ".join(map(str, problems)))


class Migration(migrations.Migration):
    dependencies = [("checks", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
