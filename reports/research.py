"""The research extract: one row per rupture (ruptures.csv) and per alliance check
(checks.csv), de-identified in the HIPAA Safe Harbor sense.

- Identifiers: every client, rupture and therapist gets a number drawn for this extract
  alone (a row_number over a random order seeded by a fresh random salt that is thrown
  away), so two extracts cannot be joined and nothing leads back to a case code.
- Dates: none. Each row says how many days after the client's first session it happened.
- Free text: none (notes, hypotheses, plans, "other" signals, a client's own words in a
  check are left out), and no names, usernames or e-mails.

Streamed straight out of PostgreSQL with COPY ... TO STDOUT: the rows never become Python
objects, so an extract of the whole clinic costs about what the SELECT itself costs
(bench/bench_research.py measures it against a bare COPY of the same SELECT).
"""

import secrets
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from ruptures import vocabulary as v
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


CHECK_COLUMNS = [
    "check", "client", "therapist", "day", "respondent", "instrument", "version", "declined", "tension",
    "intensity", "worked_through", "together", "client_reported_rupture",
]


def _tables():
    from checks.models import AllianceCheck, Instrument

    return {
        "client": Client._meta.db_table, "session": TherapySession._meta.db_table,
        "rupture": RuptureEvent._meta.db_table, "attempt": RepairAttempt._meta.db_table,
        "note": SupervisionNote._meta.db_table, "check": AllianceCheck._meta.db_table,
        "instrument": Instrument._meta.db_table,
    }


def _numbering(t):
    """The period's held sessions with a rupture or a check, and the numbers drawn for their
    clients and therapists: the same in every file of one extract (one salt), so the files
    join on them, and different in the next extract."""
    return f"""
    held AS MATERIALIZED (
        SELECT s.id, s.client_id, c.therapist_id, s.starts_at
        FROM {t['session']} s JOIN {t['client']} c ON c.id = s.client_id
        WHERE s.status = %(held)s AND s.starts_at >= %(start)s AND s.starts_at < %(end)s
          AND {_alive('s')} AND {_alive('c')}
          AND (EXISTS (SELECT 1 FROM {t['rupture']} r WHERE r.session_id = s.id AND {_alive('r')})
               OR EXISTS (SELECT 1 FROM {t['check']} k WHERE k.session_id = s.id AND {_alive('k')}))
    ),
    firsts AS (
        SELECT s.client_id, min(s.starts_at) AS first_at
        FROM {t['session']} s
        WHERE s.client_id IN (SELECT DISTINCT client_id FROM held) AND {_alive('s')}
        GROUP BY s.client_id
    ),
    -- Numbers drawn for this extract: a random order from a salt nobody keeps.
    client_ids AS (
        SELECT client_id, row_number() OVER (ORDER BY md5(%(salt)s || 'c' || client_id)) AS n
        FROM (SELECT DISTINCT client_id FROM held) x
    ),
    therapist_ids AS (
        SELECT therapist_id, row_number() OVER (ORDER BY md5(%(salt)s || 't' || therapist_id)) AS n
        FROM (SELECT DISTINCT therapist_id FROM held) x
    )"""


def _params(period, salt):
    return {
        "held": SessionStatus.HELD.value, "start": period.start_at, "end": period.end_at,
        "tz": timezone.get_current_timezone_name(), "repaired": list(v.REPAIRED_STATUSES),
        "salt": salt,
    }


def _day(alias):
    return f"({alias}.starts_at AT TIME ZONE %(tz)s)::date - (f.first_at AT TIME ZONE %(tz)s)::date"


def ruptures_extract(period: Period, *, salt: str | None = None) -> Extract:
    """The SELECT (and its parameters) behind ruptures.csv, for COPY or for EXPLAIN."""
    t = _tables()
    sql = f"""
    WITH {_numbering(t)},
    rows AS (
        SELECT row_number() OVER (ORDER BY md5(%(salt)s || 'r' || r.id)) AS rupture,
               ci.n AS client, ti.n AS therapist, {_day('h')} AS day,
               r.kind, r.actor, NULLIF(array_to_string(r.markers, ';'), '') AS markers, r.intensity, r.minute,
               r.source, NULLIF(array_to_string(r.internal_signals, ';'), '') AS internal_signals, r.repair_status,
               (SELECT count(*) FROM {t['attempt']} a WHERE a.rupture_id = r.id AND {_alive('a')})
                   AS attempts,
               (SELECT (min(a_s.starts_at) AT TIME ZONE %(tz)s)::date
                FROM {t['attempt']} a JOIN {t['session']} a_s ON a_s.id = a.session_id
                WHERE a.rupture_id = r.id AND a.outcome = ANY(%(repaired)s::text[])
                      AND {_alive('a')} AND {_alive('a_s')}
               ) - (h.starts_at AT TIME ZONE %(tz)s)::date AS days_to_repair,
               EXISTS (SELECT 1 FROM {t['note']} n WHERE n.rupture_id = r.id)::int
                   AS discussed_in_supervision
        FROM held h
        JOIN {t['rupture']} r ON r.session_id = h.id AND {_alive('r')}
        JOIN firsts f ON f.client_id = h.client_id
        JOIN client_ids ci ON ci.client_id = h.client_id
        JOIN therapist_ids ti ON ti.therapist_id = h.therapist_id
    )
    SELECT {', '.join(RUPTURE_COLUMNS)} FROM rows ORDER BY rupture
    """
    return Extract("ruptures.csv", sql, _params(period, salt or secrets.token_hex(16)))


def checks_extract(period: Period, *, salt: str | None = None) -> Extract:
    """checks.csv: one row per alliance check, its meanings only (never a free-text answer)."""
    t = _tables()
    sql = f"""
    WITH {_numbering(t)},
    rows AS (
        SELECT row_number() OVER (ORDER BY md5(%(salt)s || 'k' || k.id)) AS "check",
               ci.n AS client, ti.n AS therapist, {_day('h')} AS day,
               k.respondent, i.slug AS instrument, i.version, k.declined::int AS declined, k.tension,
               k.intensity, k.worked_through, k.together, k.client_reported_rupture::int AS client_reported_rupture
        FROM held h
        JOIN {t['check']} k ON k.session_id = h.id AND {_alive('k')}
        JOIN {t['instrument']} i ON i.id = k.instrument_id
        JOIN firsts f ON f.client_id = h.client_id
        JOIN client_ids ci ON ci.client_id = h.client_id
        JOIN therapist_ids ti ON ti.therapist_id = h.therapist_id
    )
    SELECT {', '.join('"check"' if c == "check" else c for c in CHECK_COLUMNS)} FROM rows ORDER BY "check"
    """
    return Extract("checks.csv", sql, _params(period, salt or secrets.token_hex(16)))


def extracts(period: Period) -> list[Extract]:
    # One salt for the files of one extract: their client and therapist numbers agree.
    salt = secrets.token_hex(16)
    return [ruptures_extract(period, salt=salt), checks_extract(period, salt=salt)]


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
