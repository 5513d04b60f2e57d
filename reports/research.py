"""The research extract: one row per rupture, de-identified in the HIPAA Safe Harbor sense.

- Identifiers: every client, rupture and therapist gets a number drawn for this extract
  alone (a row_number over a random order seeded by a fresh random salt that is thrown
  away), so two extracts cannot be joined and nothing leads back to a case code.
- Dates: none. Each row says how many days after the client's first session it happened.
- Free text: none (notes, hypotheses, plans, "other" signals are left out), and no names,
  usernames or e-mails.

Streamed straight out of PostgreSQL with COPY ... TO STDOUT: the rows never become Python
objects, so an extract of the whole clinic costs about what the SELECT itself costs
(bench/bench_research.py measures it against a bare COPY of the same SELECT).
"""

import secrets
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from ruptures.models import RepairAttempt, RuptureEvent
from sessions.models import Client, SessionStatus, TherapySession
from supervision.measures import Period
from supervision.models import SupervisionNote

RUPTURE_COLUMNS = [
    "rupture", "client", "therapist", "day", "kind", "actor", "markers", "intensity", "minute", "source",
    "internal_signals", "repair_status", "attempts", "days_to_repair", "discussed_in_supervision",
]


@dataclass(frozen=True)
class Extract:
    name: str
    sql: str
    params: dict


def _alive(alias):
    return f"{alias}.deleted_at IS NULL"


def ruptures_extract(period: Period, *, salt: str | None = None) -> Extract:
    """The SELECT (and its parameters) behind ruptures.csv, for COPY or for EXPLAIN."""
    tables = {
        "client": Client._meta.db_table, "session": TherapySession._meta.db_table,
        "rupture": RuptureEvent._meta.db_table, "attempt": RepairAttempt._meta.db_table,
        "note": SupervisionNote._meta.db_table,
    }
    sql = f"""
    WITH picked AS MATERIALIZED (
        SELECT r.id, r.kind, r.actor, r.markers, r.intensity, r.minute, r.source, r.internal_signals,
               r.repair_status, s.client_id, c.therapist_id, s.starts_at
        FROM {tables['rupture']} r
        JOIN {tables['session']} s ON s.id = r.session_id
        JOIN {tables['client']} c ON c.id = s.client_id
        WHERE s.status = %(held)s AND s.starts_at >= %(start)s AND s.starts_at < %(end)s
          AND {_alive('r')} AND {_alive('s')} AND {_alive('c')}
    ),
    firsts AS (
        SELECT s.client_id, min(s.starts_at) AS first_at
        FROM {tables['session']} s
        WHERE s.client_id IN (SELECT DISTINCT client_id FROM picked) AND {_alive('s')}
        GROUP BY s.client_id
    ),
    -- Numbers drawn for this extract: a random order from a salt nobody keeps.
    client_ids AS (
        SELECT client_id, row_number() OVER (ORDER BY md5(%(salt)s || 'c' || client_id)) AS n
        FROM (SELECT DISTINCT client_id FROM picked) x
    ),
    therapist_ids AS (
        SELECT therapist_id, row_number() OVER (ORDER BY md5(%(salt)s || 't' || therapist_id)) AS n
        FROM (SELECT DISTINCT therapist_id FROM picked) x
    ),
    rows AS (
        SELECT row_number() OVER (ORDER BY md5(%(salt)s || 'r' || p.id)) AS rupture,
               ci.n AS client, ti.n AS therapist,
               (p.starts_at AT TIME ZONE %(tz)s)::date - (f.first_at AT TIME ZONE %(tz)s)::date AS day,
               p.kind, p.actor, NULLIF(array_to_string(p.markers, ';'), '') AS markers, p.intensity, p.minute, p.source,
               NULLIF(array_to_string(p.internal_signals, ';'), '') AS internal_signals, p.repair_status,
               (SELECT count(*) FROM {tables['attempt']} a WHERE a.rupture_id = p.id AND {_alive('a')})
                   AS attempts,
               (SELECT (min(a_s.starts_at) AT TIME ZONE %(tz)s)::date
                FROM {tables['attempt']} a JOIN {tables['session']} a_s ON a_s.id = a.session_id
                WHERE a.rupture_id = p.id AND a.outcome = ANY(%(repaired)s::text[])
                      AND {_alive('a')} AND {_alive('a_s')}
               ) - (p.starts_at AT TIME ZONE %(tz)s)::date AS days_to_repair,
               EXISTS (SELECT 1 FROM {tables['note']} n WHERE n.rupture_id = p.id)::int
                   AS discussed_in_supervision
        FROM picked p
        JOIN firsts f ON f.client_id = p.client_id
        JOIN client_ids ci ON ci.client_id = p.client_id
        JOIN therapist_ids ti ON ti.therapist_id = p.therapist_id
    )
    SELECT {', '.join(RUPTURE_COLUMNS)} FROM rows ORDER BY rupture
    """
    params = {
        "held": SessionStatus.HELD.value, "start": period.start_at, "end": period.end_at,
        "tz": timezone.get_current_timezone_name(), "repaired": ["resolved", "partially_resolved"],
        "salt": salt or secrets.token_hex(16),
    }
    return Extract("ruptures.csv", sql, params)


def extracts(period: Period) -> list[Extract]:
    return [ruptures_extract(period)]


def copy_to(extract: Extract, write) -> int:
    """COPY the extract's rows as CSV with a header through `write(bytes)`; return the bytes."""
    from psycopg import ClientCursor

    connection.ensure_connection()
    # COPY takes no bound parameters: the values are quoted into the statement by psycopg.
    statement = ClientCursor(connection.connection).mogrify(extract.sql, extract.params)
    written = 0
    command = f"COPY ({statement}) TO STDOUT WITH (FORMAT csv, HEADER)"
    with connection.cursor() as cursor, cursor.cursor.copy(command) as copy:
        for chunk in copy:
            write(bytes(chunk))
            written += len(chunk)
    return written


def write_extract(period: Period, directory) -> dict:
    """ruptures.csv (and each further extract) in `directory`; {file name: bytes}."""
    from pathlib import Path

    sizes = {}
    for extract in extracts(period):
        path = Path(directory) / extract.name
        with open(path, "wb") as f:
            sizes[extract.name] = copy_to(extract, f.write)
    return sizes
