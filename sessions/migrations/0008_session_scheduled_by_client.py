"""An index of each client's booked sessions: the dashboard's open flags read a caseload's
clients' coming sessions, and through session_client_time the planner preferred the
client key alone and read each client's whole history."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("therapy_sessions", "0007_session_client_fixed"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="therapysession",
            index=models.Index(condition=models.Q(("status", "scheduled")), fields=["client", "starts_at"],
                               name="session_scheduled_by_client"),
        ),
    ]
