"""The clinic's track record (strategies.TrackRecord), kept up to date by the database.

Statement-level triggers on repair attempts (insert, update, delete) and on ruptures
(update: a changed kind moves its attempts, a soft delete or restore takes them out or
back) add the difference each statement makes, one upsert per statement however many
rows it wrote, so a 30,000-row import pays once. An attempt counts while neither it nor
its rupture is soft-deleted. The triggers lock the ruptures they read (FOR SHARE), so an
attempt saved while its rupture is being deleted waits and then sees the deletion.

`rebuild()` recomputes the table from every attempt: the migration that creates it and
`manage.py rebuild_track_record` use it; pages never do.
"""

from django.db import connection, transaction

TABLE = "strategies_trackrecord"
ATTEMPT = "ruptures_repairattempt"
RUPTURE = "ruptures_ruptureevent"

# Adds the rows of `delta` (kind, strategy, outcome, n) to the table; rows in key order,
# so two statements touching the same counters take their locks in the same order.
_UPSERT = f"""
    INSERT INTO {TABLE} AS t (kind, strategy, outcome, attempts)
    SELECT kind, strategy, outcome, sum(n) FROM ({{delta}}) AS d
    GROUP BY kind, strategy, outcome HAVING sum(n) <> 0
    ORDER BY kind, strategy, outcome
    ON CONFLICT (kind, strategy, outcome) DO UPDATE SET attempts = t.attempts + EXCLUDED.attempts;
"""

_ATTEMPTS_IN = """
    SELECT r.kind, x.strategy, x.outcome, {sign} AS n
    FROM {rows} x JOIN (
        SELECT id, kind FROM {rupture}
        WHERE id IN (SELECT rupture_id FROM {rows}) AND deleted_at IS NULL FOR SHARE
    ) r ON r.id = x.rupture_id
    WHERE x.deleted_at IS NULL
"""

_RUPTURES_IN = """
    SELECT x.kind, a.strategy, a.outcome, {sign} AS n
    FROM {rows} x JOIN {attempt} a ON a.rupture_id = x.id
    WHERE x.deleted_at IS NULL AND a.deleted_at IS NULL
      AND x.id IN (SELECT o.id FROM old_rows o JOIN new_rows n ON n.id = o.id
                   WHERE o.kind IS DISTINCT FROM n.kind
                      OR (o.deleted_at IS NULL) <> (n.deleted_at IS NULL))
"""


def _attempts(rows, sign):
    return _ATTEMPTS_IN.format(rows=rows, sign=sign, rupture=RUPTURE)


def _ruptures(rows, sign):
    return _RUPTURES_IN.format(rows=rows, sign=sign, attempt=ATTEMPT)


INSTALL = f"""
CREATE FUNCTION strategies_track_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_UPSERT.format(delta=_attempts("new_rows", 1))}
    ELSIF TG_OP = 'DELETE' THEN
        {_UPSERT.format(delta=_attempts("old_rows", -1))}
    ELSE
        {_UPSERT.format(delta=_attempts("new_rows", 1) + " UNION ALL " + _attempts("old_rows", -1))}
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION strategies_track_ruptures() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_UPSERT.format(delta=_ruptures("new_rows", 1) + " UNION ALL " + _ruptures("old_rows", -1))}
    RETURN NULL;
END $$;

CREATE TRIGGER track_record_insert AFTER INSERT ON {ATTEMPT}
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION strategies_track_attempts();
CREATE TRIGGER track_record_update AFTER UPDATE ON {ATTEMPT}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION strategies_track_attempts();
CREATE TRIGGER track_record_delete AFTER DELETE ON {ATTEMPT}
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION strategies_track_attempts();
CREATE TRIGGER track_record_update AFTER UPDATE ON {RUPTURE}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION strategies_track_ruptures();
"""

UNINSTALL = f"""
DROP TRIGGER IF EXISTS track_record_insert ON {ATTEMPT};
DROP TRIGGER IF EXISTS track_record_update ON {ATTEMPT};
DROP TRIGGER IF EXISTS track_record_delete ON {ATTEMPT};
DROP TRIGGER IF EXISTS track_record_update ON {RUPTURE};
DROP FUNCTION IF EXISTS strategies_track_attempts();
DROP FUNCTION IF EXISTS strategies_track_ruptures();
"""

REBUILD = f"""
LOCK TABLE {TABLE} IN EXCLUSIVE MODE;
DELETE FROM {TABLE};
INSERT INTO {TABLE} (kind, strategy, outcome, attempts)
SELECT r.kind, a.strategy, a.outcome, count(*)
FROM {ATTEMPT} a JOIN {RUPTURE} r ON r.id = a.rupture_id
WHERE a.deleted_at IS NULL AND r.deleted_at IS NULL
GROUP BY r.kind, a.strategy, a.outcome;
"""


def rebuild(using=connection):
    """Count every attempt afresh; writers wait on the table lock meanwhile."""
    with transaction.atomic(using=using.alias), using.cursor() as cursor:
        cursor.execute(REBUILD)
