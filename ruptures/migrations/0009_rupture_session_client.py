"""Each rupture carries its session's client (RuptureEvent.session_client), kept by a trigger.

The copy is filled in for every existing rupture before the trigger takes over; the
history trigger is replaced first (its new form ignores the copy), so filling it in
records no history.
"""

import django.db.models.deletion
import pgtrigger.compiler
import pgtrigger.migrations
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0006_access_log_indexes_not_repeated'),
        ('ruptures', '0008_risk_recorded_at'),
        ('therapy_sessions', '0007_session_client_fixed'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        pgtrigger.migrations.RemoveTrigger(
            model_name='ruptureevent',
            name='update_update',
        ),
        migrations.AddField(
            model_name='ruptureevent',
            name='session_client',
            field=models.ForeignKey(editable=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='therapy_sessions.client'),
        ),
        migrations.RunSQL(
            """
            UPDATE ruptures_ruptureevent r SET session_client_id = s.client_id
            FROM therapy_sessions_therapysession s WHERE s.id = r.session_id
            """,
            migrations.RunSQL.noop,
        ),
        migrations.AddIndex(
            model_name='ruptureevent',
            index=models.Index(condition=models.Q(('repair_status__in', ['attempted', 'unaddressed', 'unresolved'])), fields=['session_client'], name='rupture_open_by_client'),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='ruptureevent',
            trigger=pgtrigger.compiler.Trigger(name='copy_session_client', sql=pgtrigger.compiler.UpsertTriggerSql(func='\n    NEW.session_client_id := (SELECT client_id FROM therapy_sessions_therapysession WHERE id = NEW.session_id);\n    RETURN NEW;\n', hash='b9e1a7696c9cd1ac4e539354300e9009da1c1fea', operation='INSERT OR UPDATE OF "session_id", "session_client_id"', pgid='pgtrigger_copy_session_client_7003b', table='ruptures_ruptureevent', when='BEFORE')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='ruptureevent',
            trigger=pgtrigger.compiler.Trigger(name='update_update', sql=pgtrigger.compiler.UpsertTriggerSql(func='WITH _pgh_attached_context AS ( SELECT _pgh_attach_context() AS value ) INSERT INTO "ruptures_ruptureeventevent" ("actor", "created_at", "created_by_id", "declined_relational_talk", "deleted_at", "deleted_by_id", "deletion_id", "deletion_reason", "hypothesis", "id", "intensity", "internal_signals", "internal_signals_other", "key", "kind", "markers", "minute", "noticed", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "plan", "repair_status", "risk", "risk_recorded_at", "session_id", "source", "updated_at", "updated_by_id", "version") SELECT new_values."actor", new_values."created_at", new_values."created_by_id", new_values."declined_relational_talk", new_values."deleted_at", new_values."deleted_by_id", new_values."deletion_id", new_values."deletion_reason", new_values."hypothesis", new_values."id", new_values."intensity", new_values."internal_signals", new_values."internal_signals_other", new_values."key", new_values."kind", new_values."markers", new_values."minute", new_values."noticed", _pgh_attached_context.value, NOW(), \'update\', new_values."id", new_values."plan", new_values."repair_status", new_values."risk", new_values."risk_recorded_at", new_values."session_id", new_values."source", new_values."updated_at", new_values."updated_by_id", new_values."version" FROM ( SELECT new_values.* FROM old_values JOIN new_values ON (old_values."id") = (new_values."id") WHERE (old_values."actor" IS DISTINCT FROM (new_values."actor") OR old_values."created_at" IS DISTINCT FROM (new_values."created_at") OR old_values."created_by_id" IS DISTINCT FROM (new_values."created_by_id") OR old_values."declined_relational_talk" IS DISTINCT FROM (new_values."declined_relational_talk") OR old_values."deleted_at" IS DISTINCT FROM (new_values."deleted_at") OR old_values."deleted_by_id" IS DISTINCT FROM (new_values."deleted_by_id") OR old_values."deletion_id" IS DISTINCT FROM (new_values."deletion_id") OR old_values."deletion_reason" IS DISTINCT FROM (new_values."deletion_reason") OR old_values."hypothesis" IS DISTINCT FROM (new_values."hypothesis") OR old_values."id" IS DISTINCT FROM (new_values."id") OR old_values."intensity" IS DISTINCT FROM (new_values."intensity") OR old_values."internal_signals" IS DISTINCT FROM (new_values."internal_signals") OR old_values."internal_signals_other" IS DISTINCT FROM (new_values."internal_signals_other") OR old_values."key" IS DISTINCT FROM (new_values."key") OR old_values."kind" IS DISTINCT FROM (new_values."kind") OR old_values."markers" IS DISTINCT FROM (new_values."markers") OR old_values."minute" IS DISTINCT FROM (new_values."minute") OR old_values."noticed" IS DISTINCT FROM (new_values."noticed") OR old_values."plan" IS DISTINCT FROM (new_values."plan") OR old_values."repair_status" IS DISTINCT FROM (new_values."repair_status") OR old_values."risk" IS DISTINCT FROM (new_values."risk") OR old_values."risk_recorded_at" IS DISTINCT FROM (new_values."risk_recorded_at") OR old_values."session_id" IS DISTINCT FROM (new_values."session_id") OR old_values."source" IS DISTINCT FROM (new_values."source") OR old_values."updated_at" IS DISTINCT FROM (new_values."updated_at") OR old_values."updated_by_id" IS DISTINCT FROM (new_values."updated_by_id") OR old_values."version" IS DISTINCT FROM (new_values."version")) ) AS new_values, _pgh_attached_context; RETURN NULL;', hash='3785256fba588d4309e569f149aa4783d4a1d3bf', level='STATEMENT', operation='UPDATE', pgid='pgtrigger_update_update_26042', referencing='REFERENCING OLD TABLE AS old_values  NEW TABLE AS new_values ', table='ruptures_ruptureevent', when='AFTER')),
        ),
    ]
