from django.db import migrations

# One group per role. Only the clinic admin works in the admin site: people, roles,
# supervision links and which therapist a client is assigned to. Therapists and
# supervisors work through the app's own pages, whose access rules live in the
# querysets, so their groups carry no model permissions.
ADMIN_PERMISSIONS = [
    ("accounts", "user", ["add", "change", "view"]),
    ("accounts", "supervisionlink", ["add", "change", "delete", "view"]),
    ("therapy_sessions", "client", ["change", "view"]),
]


def create_groups(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name in ("therapist", "supervisor"):
        Group.objects.get_or_create(name=name)
    admin, _ = Group.objects.get_or_create(name="admin")
    for app_label, model, actions in ADMIN_PERMISSIONS:
        codenames = [f"{action}_{model}" for action in actions]
        admin.permissions.add(
            *Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("therapy_sessions", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
