from django.db import migrations

# A repair attempt is tried in the rupture's own session or a later one of the same
# client. A CHECK constraint cannot look at other tables, so a trigger does it; it
# guards imports and raw SQL as well as the forms.
CREATE = """
CREATE FUNCTION ruptures_attempt_session_check() RETURNS trigger AS $$
DECLARE
    rupture_client bigint;
    rupture_start timestamptz;
    attempt_client bigint;
    attempt_start timestamptz;
BEGIN
    SELECT s.client_id, s.starts_at INTO rupture_client, rupture_start
      FROM ruptures_ruptureevent r JOIN therapy_sessions_therapysession s ON s.id = r.session_id
     WHERE r.id = NEW.rupture_id;
    SELECT client_id, starts_at INTO attempt_client, attempt_start
      FROM therapy_sessions_therapysession WHERE id = NEW.session_id;
    IF attempt_client IS DISTINCT FROM rupture_client THEN
        RAISE EXCEPTION 'repair attempt session % belongs to another client', NEW.session_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'attempt_session_same_client';
    END IF;
    IF attempt_start < rupture_start THEN
        RAISE EXCEPTION 'repair attempt session % is before the rupture', NEW.session_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'attempt_session_not_before_rupture';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER ruptures_attempt_session_check
    BEFORE INSERT OR UPDATE OF rupture_id, session_id ON ruptures_repairattempt
    FOR EACH ROW EXECUTE FUNCTION ruptures_attempt_session_check();
"""

DROP = """
DROP TRIGGER IF EXISTS ruptures_attempt_session_check ON ruptures_repairattempt;
DROP FUNCTION IF EXISTS ruptures_attempt_session_check();
"""


class Migration(migrations.Migration):
    dependencies = [("ruptures", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, DROP)]
