"""The reminder sweep: flag open ruptures before the client's next session, then e-mail.

At time T, an open rupture R is flagged for a session U of the same client when U is
scheduled, T <= U.starts_at <= T + window, and R's session started before U. The flag
is escalated to the therapist's supervisor when R's intensity is 4 or 5, or when a
held session of the client lies strictly between R's session and U (carried over).

The database is the source of truth: a sweep may run twice, concurrently, or be
killed half-way and run again, and still give one flag per (R, U) (the unique
constraint) and one e-mail per flag (the claim). Every step is one set-based statement,
so a sweep runs the same few queries whatever the size of the clinic.

A risk recorded on a rupture (domain 6b) does not wait for a session: the same sweep,
asked for on commit by the save, raises a risk alert and e-mails the supervisor at once.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection
from django.db.models import Exists, OuterRef
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import SupervisionLink, User
from checks import meaning
from reminders.models import RiskAlert
from ruptures import vocabulary as v
from ruptures.models import RuptureEvent
from sessions.models import SessionStatus

logger = logging.getLogger(__name__)

# A claim older than this whose e-mail was never marked sent belongs to a sweep that
# died between claiming and sending: the next sweep may take it over. Far longer than
# a sweep runs (CELERY_TASK_TIME_LIMIT), so a live sweep never loses its claim.
CLAIM_LEASE = timedelta(minutes=30)

# Slugs from the vocabulary (never input), inlined as literals rather than bound so that
# the planner sees the condition implies the partial index `rupture_open_by_session`.
_OPEN = ", ".join(f"'{status}'" for status in sorted(v.OPEN_STATUSES))
_SCHEDULED = f"'{SessionStatus.SCHEDULED}'"
_HELD = f"'{SessionStatus.HELD}'"


@dataclass(frozen=True)
class RaisedFlag:
    rupture: str | None  # RuptureEvent.key, as in caseload files (reasons "rupture", "stalled")
    session: str | None  # TherapySession.key; none for a stalled flag
    client: str  # case code
    therapist: str  # username
    escalated: bool
    reason: str = "rupture"  # rupture | unlogged | drop | stalled
    check: str | None = None  # AllianceCheck.key (reasons "unlogged" and "drop")

    def as_json(self) -> dict:
        """What `flag_open_ruptures --json` prints: a check's flag names the check, not a
        rupture; a stalled flag has no session (null)."""
        what = {"check": self.check} if self.reason in ("unlogged", "drop") else {"rupture": self.rupture}
        return {"reason": self.reason, **what, "session": self.session, "client": self.client,
                "therapist": self.therapist, "escalated": self.escalated}

    @property
    def source(self) -> str:
        return self.check if self.reason in ("unlogged", "drop") else self.rupture


@dataclass(frozen=True)
class Notified:
    flags: int = 0  # flags e-mailed to their therapist
    escalations: int = 0  # escalated flags e-mailed to a supervisor
    emails: int = 0
    failed: int = 0  # e-mails the backend refused: their flags go out with a later sweep


@dataclass(frozen=True)
class SweepResult:
    now: datetime
    window: timedelta
    client_id: int | None
    raised: tuple[RaisedFlag, ...]
    notified: Notified
    risk_alerts: int = 0
    risk_alerts_notified: int = 0

    def counts(self) -> dict:
        """What may be logged or handed to Celery: numbers, no keys and no case codes."""
        return {
            "raised": len(self.raised),
            "escalated": sum(f.escalated for f in self.raised),
            "notified": self.notified.flags,
            "escalations_notified": self.notified.escalations,
            "emails": self.notified.emails,
            "failed": self.notified.failed,
            "risk_alerts": self.risk_alerts,
            "risk_alerts_notified": self.risk_alerts_notified,
        }


def sweep(*, now: datetime | None = None, window: timedelta | None = None,
          client_id: int | None = None) -> SweepResult:
    """One sweep at time `now` (default: the clock), for every client or for one."""
    clock = timezone.now()
    now = now or clock
    window = window if window is not None else timedelta(hours=settings.REMINDER_WINDOW_HOURS)
    # Risk first: it is the one thing that must not wait behind the reminders.
    risk_alerts = raise_risk_alerts(now=now, client_id=client_id, clock=clock)
    risk_notified = notify_risk_alerts(now=now, client_id=client_id, clock=clock)
    raised = raise_flags(now=now, window=window, client_id=client_id, clock=clock)
    raised += raise_check_flags(now=now, window=window, client_id=client_id, clock=clock)
    raised += raise_stalled_flags(now=now, client_id=client_id, clock=clock)
    escalate_stalled_flags(now=now, client_id=client_id)
    notified = notify_pending(now=now, client_id=client_id, clock=clock)
    if client_id is None:
        # Only a full sweep proves that beat and a worker are alive; the on-commit
        # sweeps for one client would hide a dead beat.
        record_heartbeat(raised=len(raised), notified=notified.flags)
    return SweepResult(
        now=now, window=window, client_id=client_id, raised=raised, notified=notified,
        risk_alerts=risk_alerts, risk_alerts_notified=risk_notified.escalations,
    )


# --- Stalled repairs -----------------------------------------------------------------------
# An open rupture R is stalled at T when its client has nothing booked or held in the
# STALLED_AFTER_DAYS after R's session (decided once those days have passed), or when the
# first session after R's was a no-show or cancelled. One stalled flag per rupture, never
# deleted; it escalates to the supervisor once R's session is STALLED_ESCALATE_DAYS old.
# A discharged client's open ruptures are the discharge form's business, not a flag's:
# no stalled flag is raised, escalated or e-mailed for them, even one raised before the
# discharge (Flag.objects.stalled() leaves them off the home pages too).

_MISSED = f"'{SessionStatus.NO_SHOW}', '{SessionStatus.CANCELLED}'"
_DISCHARGED = "'discharged'"


def raise_stalled_flags(*, now, client_id=None, clock=None) -> tuple[RaisedFlag, ...]:
    params = {
        "now": now, "clock": clock or timezone.now(), "client": client_id,
        "after": timedelta(days=settings.STALLED_AFTER_DAYS),
        "escalate": timedelta(days=settings.STALLED_ESCALATE_DAYS),
    }
    only_client = "AND rs.client_id = %(client)s" if client_id is not None else ""
    sql = f"""
        WITH raised AS (
            INSERT INTO reminders_flag (reason, rupture_id, session_id, raised_at, escalated, carried_over)
            SELECT 'stalled', r.id, NULL, %(clock)s, rs.starts_at <= %(now)s - %(escalate)s, false
            FROM ruptures_ruptureevent r
            JOIN therapy_sessions_therapysession rs ON rs.id = r.session_id
            JOIN therapy_sessions_client cl ON cl.id = rs.client_id
            WHERE r.repair_status IN ({_OPEN})
              AND r.deleted_at IS NULL AND rs.deleted_at IS NULL AND cl.deleted_at IS NULL
              AND cl.status <> {_DISCHARGED}
              AND rs.starts_at <= %(now)s
              {only_client}
              AND NOT EXISTS (
                  SELECT 1 FROM reminders_flag done WHERE done.rupture_id = r.id AND done.reason = 'stalled'
              )
              AND (
                  (rs.starts_at + %(after)s <= %(now)s AND NOT EXISTS (
                      SELECT 1 FROM therapy_sessions_therapysession n
                      WHERE n.client_id = rs.client_id AND n.deleted_at IS NULL
                        AND n.status IN ({_SCHEDULED}, {_HELD})
                        AND n.starts_at > rs.starts_at AND n.starts_at <= rs.starts_at + %(after)s
                  ))
                  OR (
                      SELECT n.status FROM therapy_sessions_therapysession n
                      WHERE n.client_id = rs.client_id AND n.deleted_at IS NULL AND n.starts_at > rs.starts_at
                      ORDER BY n.starts_at LIMIT 1
                  ) IN ({_MISSED})
              )
            ORDER BY r.id
            ON CONFLICT (rupture_id, reason) WHERE reason = 'stalled' DO NOTHING
            RETURNING rupture_id, escalated
        )
        SELECT r.key, NULL, c.code, t.username, raised.escalated, 'stalled'
        FROM raised
        JOIN ruptures_ruptureevent r ON r.id = raised.rupture_id
        JOIN therapy_sessions_therapysession rs ON rs.id = r.session_id
        JOIN therapy_sessions_client c ON c.id = rs.client_id
        JOIN accounts_user t ON t.id = c.therapist_id
        ORDER BY rs.starts_at, c.code, r.key
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return tuple(RaisedFlag(*row) for row in cursor.fetchall())


def escalate_stalled_flags(*, now, client_id=None) -> int:
    """A stalled rupture still open STALLED_ESCALATE_DAYS after its session goes to the
    supervisor, while its client is in therapy."""
    only_client = "AND rs.client_id = %(client)s" if client_id is not None else ""
    sql = f"""
        UPDATE reminders_flag AS f SET escalated = true
        FROM ruptures_ruptureevent r, therapy_sessions_therapysession rs, therapy_sessions_client c
        WHERE f.reason = 'stalled' AND NOT f.escalated
          AND r.id = f.rupture_id AND rs.id = r.session_id AND c.id = rs.client_id
          AND r.repair_status IN ({_OPEN})
          AND r.deleted_at IS NULL AND rs.deleted_at IS NULL AND c.deleted_at IS NULL
          AND c.status <> {_DISCHARGED}
          AND rs.starts_at <= %(now)s - %(escalate)s
          {only_client}
    """
    params = {"now": now, "client": client_id, "escalate": timedelta(days=settings.STALLED_ESCALATE_DAYS)}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# A claim for supervisors waits while the therapist (client c) has no current supervisor
# who can receive e-mail; one clause, so every supervisor claim agrees on who that is.
_HAS_CURRENT_SUPERVISOR = """EXISTS (
              SELECT 1 FROM accounts_supervisionlink l JOIN accounts_user sv ON sv.id = l.supervisor_id
              WHERE l.therapist_id = c.therapist_id
                AND l.starts_on <= %(today)s AND (l.ends_on IS NULL OR l.ends_on >= %(today)s)
                AND sv.is_active AND sv.email <> ''
          )"""


def claim_stalled_for_supervisors(*, now, clock, client_id=None) -> list[tuple[int, int]]:
    """Claim the escalated stalled flags to e-mail to supervisors: [(flag id, therapist id)].

    The flags the supervisor's home lists (Flag.objects.stalled().without_next_session()):
    a client in therapy with nothing booked. A booking made later is a next step, and
    the flags before that session take over.
    """
    only_client = "AND rs.client_id = %(client)s" if client_id is not None else ""
    sql = f"""
        UPDATE reminders_flag AS f SET escalation_claimed_at = %(clock)s
        FROM ruptures_ruptureevent r, therapy_sessions_therapysession rs, therapy_sessions_client c
        WHERE f.reason = 'stalled' AND f.escalated
          AND r.id = f.rupture_id AND rs.id = r.session_id AND c.id = rs.client_id
          AND r.repair_status IN ({_OPEN})
          AND r.deleted_at IS NULL AND rs.deleted_at IS NULL AND c.deleted_at IS NULL
          AND c.status <> {_DISCHARGED}
          AND NOT EXISTS (
              SELECT 1 FROM therapy_sessions_therapysession n
              WHERE n.client_id = c.id AND n.status = {_SCHEDULED} AND n.starts_at >= %(now)s
                AND n.deleted_at IS NULL
          )
          {only_client}
          AND f.escalation_notified_at IS NULL
          AND (f.escalation_claimed_at IS NULL OR f.escalation_claimed_at < %(stale)s)
          AND {_HAS_CURRENT_SUPERVISOR}
        RETURNING f.id, c.therapist_id
    """
    params = {
        "now": now, "clock": clock, "stale": clock - CLAIM_LEASE, "client": client_id,
        "today": timezone.localdate(now),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# --- Risk alerts (domain 6b) ------------------------------------------------------------


def raise_risk_alerts(*, now, client_id=None, clock=None) -> int:
    """One alert per rupture and risk that is news (RuptureEvent.objects.risk_news, the
    supervisor's home's own list); how many were new."""
    news = RuptureEvent.objects.filter(
        session__deleted_at__isnull=True, session__client__deleted_at__isnull=True
    ).risk_news(now)
    if client_id is not None:
        news = news.filter(session__client_id=client_id)
    told = RiskAlert.objects.filter(rupture=OuterRef("pk"), risk=OuterRef("risk"))
    select, params = news.exclude(Exists(told)).order_by().values_list("id", "risk").query.sql_with_params()
    # ORDER BY: two sweeps inserting the same alerts lock them in the same order.
    sql = f"""
        INSERT INTO reminders_riskalert (rupture_id, risk, raised_at)
        SELECT news.id, news.risk, %s FROM ({select}) AS news
        ORDER BY news.id
        ON CONFLICT (rupture_id, risk) DO NOTHING
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [clock or timezone.now(), *params])
        return cursor.rowcount


def claim_risk_alerts(*, now, clock, client_id=None) -> list[tuple[int, int]]:
    """Claim the risk alerts to e-mail: [(alert id, therapist id)], like the flags' claims.

    Only alerts whose rupture still carries that risk and whose therapist has a current
    supervisor who can receive e-mail; the rest wait for one.
    """
    only_client = "AND s.client_id = %(client)s" if client_id is not None else ""
    sql = f"""
        UPDATE reminders_riskalert AS a SET claimed_at = %(clock)s
        FROM ruptures_ruptureevent r, therapy_sessions_therapysession s, therapy_sessions_client c
        WHERE r.id = a.rupture_id AND s.id = r.session_id AND c.id = s.client_id
          AND r.risk = a.risk
          AND r.deleted_at IS NULL AND s.deleted_at IS NULL AND c.deleted_at IS NULL
          {only_client}
          AND a.notified_at IS NULL
          AND (a.claimed_at IS NULL OR a.claimed_at < %(stale)s)
          AND {_HAS_CURRENT_SUPERVISOR}
        RETURNING a.id, c.therapist_id
    """
    params = {
        "clock": clock, "stale": clock - CLAIM_LEASE, "client": client_id,
        "today": timezone.localdate(now),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _supervisor_letters(claimed, *, now, template, counts):
    """One letter per current supervisor for the claimed (id, therapist id) rows, with the
    ids it carries: each supervisor hears of all their supervisees' rows in one e-mail.
    `counts(ids)` gives the letter's numbers."""
    by_therapist = defaultdict(list)
    for pk, therapist_id in claimed:
        by_therapist[therapist_id].append(pk)
    letters = []
    for supervisor, therapists in _current_supervisors(now, by_therapist).items():
        ids = [pk for t in therapists for pk in by_therapist[t.pk]]
        supervisees = [(str(t), len(by_therapist[t.pk])) for t in therapists]
        letters.append((ids, _letter(template, supervisor, {**counts(ids), "supervisees": supervisees})))
    return letters


def notify_risk_alerts(*, now, client_id=None, clock=None) -> Notified:
    clock = clock or timezone.now()
    claimed = claim_risk_alerts(now=now, clock=clock, client_id=client_id)
    if not claimed:
        return Notified()
    outcome = _send(_supervisor_letters(claimed, now=now, template="risk", counts=lambda ids: {"alerts": len(ids)}))
    unsent = {pk for pk, _ in claimed} - outcome.sent
    _settle("claimed_at", "notified_at", clock=clock, sent=outcome.sent, unsent=unsent,
            table="reminders_riskalert")
    return Notified(escalations=len(outcome.sent), emails=outcome.emails, failed=outcome.emails_failed)


def _current_supervisors(now, by_therapist):
    """{supervisor: [their supervisees among these therapists]}, in one query."""
    links = (
        SupervisionLink.objects.active(timezone.localdate(now))
        .filter(therapist_id__in=list(by_therapist), supervisor__is_active=True)
        .exclude(supervisor__email="")
        .select_related("supervisor", "therapist")
        .order_by("supervisor_id", "therapist__last_name", "therapist__username")
    )
    per_supervisor = defaultdict(list)
    for link in links:
        per_supervisor[link.supervisor].append(link.therapist)
    return per_supervisor


def raise_flags(*, now, window, client_id=None, clock=None) -> tuple[RaisedFlag, ...]:
    """Insert the missing flags in one statement; return those this call inserted."""
    params = {"start": now, "end": now + window, "clock": clock or timezone.now(), "client": client_id}
    only_client = "AND u.client_id = %(client)s" if client_id is not None else ""
    # ORDER BY: two sweeps inserting the same pairs take the rows' locks in the same
    # order, so one waits for the other instead of deadlocking.
    sql = f"""
        WITH raised AS (
            INSERT INTO reminders_flag (reason, rupture_id, session_id, raised_at, escalated, carried_over)
            SELECT 'rupture', pair.rupture_id, pair.session_id, %(clock)s,
                   pair.intensity >= 4 OR pair.carried_over, pair.carried_over
            FROM (
                SELECT r.id AS rupture_id, u.id AS session_id, r.intensity,
                       EXISTS (
                           SELECT 1 FROM therapy_sessions_therapysession h
                           WHERE h.client_id = u.client_id AND h.status = {_HELD}
                             AND h.starts_at > rs.starts_at AND h.starts_at < u.starts_at
                             AND h.deleted_at IS NULL
                       ) AS carried_over
                FROM therapy_sessions_therapysession u
                JOIN therapy_sessions_therapysession rs
                  ON rs.client_id = u.client_id AND rs.starts_at < u.starts_at
                JOIN ruptures_ruptureevent r ON r.session_id = rs.id
                JOIN therapy_sessions_client cl ON cl.id = u.client_id
                WHERE u.status = {_SCHEDULED}
                  AND u.starts_at >= %(start)s AND u.starts_at <= %(end)s
                  AND r.repair_status IN ({_OPEN})
                  -- Soft-deleted records are gone for every page, and so for reminders.
                  AND r.deleted_at IS NULL AND rs.deleted_at IS NULL AND u.deleted_at IS NULL
                  AND cl.deleted_at IS NULL
                  {only_client}
                  -- Most pairs were flagged by an earlier sweep: skip them before
                  -- working out the escalation. ON CONFLICT still settles a race.
                  AND NOT EXISTS (
                      SELECT 1 FROM reminders_flag done
                      WHERE done.rupture_id = r.id AND done.session_id = u.id AND done.reason = 'rupture'
                  )
            ) AS pair
            ORDER BY pair.rupture_id, pair.session_id
            ON CONFLICT (rupture_id, session_id) WHERE reason = 'rupture' DO NOTHING
            RETURNING rupture_id, session_id, escalated
        )
        SELECT r.key, u.key, c.code, t.username, raised.escalated
        FROM raised
        JOIN ruptures_ruptureevent r ON r.id = raised.rupture_id
        JOIN therapy_sessions_therapysession u ON u.id = raised.session_id
        JOIN therapy_sessions_client c ON c.id = u.client_id
        JOIN accounts_user t ON t.id = c.therapist_id
        ORDER BY u.starts_at, c.code, r.key
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return tuple(RaisedFlag(*row) for row in cursor.fetchall())


def raise_check_flags(*, now, window, client_id=None, clock=None) -> tuple[RaisedFlag, ...]:
    """Flags from the clients' checks (§8a), before the client's upcoming session U.

    *unlogged*: a client-reported rupture in session S where the therapist logged no
    rupture and did not answer `tension` = `yes`; raised for every upcoming session while
    it stays so, carried over (and escalated) past a held session, like a rupture.
    *drop*: the client's `together` DROP_POINTS below their previous check; raised only
    from the client's latest check before U, with no session held since. One flag per
    (check, session): unlogged comes first.
    Escalated when the client's intensity is 4-5.
    """
    params = {
        "start": now, "end": now + window, "clock": clock or timezone.now(), "client": client_id,
        "drop": meaning.DROP_POINTS, "escalating": meaning.ESCALATING_INTENSITY,
    }
    only_client = "AND u.client_id = %(client)s" if client_id is not None else ""
    alive_check = "c.respondent = 'client' AND NOT c.declined AND c.deleted_at IS NULL"
    # Two kinds of candidates, each found from the upcoming sessions in the window:
    # unlogged reports through the partial index `check_reported_by_session`,
    # and for a drop only the client's latest check before U.
    sql = f"""
        WITH upcoming AS (
            SELECT u.id, u.client_id, u.starts_at
            FROM therapy_sessions_therapysession u
            JOIN therapy_sessions_client cl ON cl.id = u.client_id
            WHERE u.status = {_SCHEDULED}
              AND u.starts_at >= %(start)s AND u.starts_at <= %(end)s
              AND u.deleted_at IS NULL AND cl.deleted_at IS NULL
              {only_client}
        ),
        candidates AS (
            SELECT c.id AS check_id, u.id AS session_id, c.intensity, 'unlogged' AS reason, 1 AS rank,
                   EXISTS (
                       SELECT 1 FROM therapy_sessions_therapysession h
                       WHERE h.client_id = u.client_id AND h.status = {_HELD}
                         AND h.starts_at > cs.starts_at AND h.starts_at < u.starts_at
                         AND h.deleted_at IS NULL
                   ) AS carried_over
            FROM upcoming u
            JOIN therapy_sessions_therapysession cs
              ON cs.client_id = u.client_id AND cs.starts_at < u.starts_at AND cs.deleted_at IS NULL
            JOIN checks_alliancecheck c ON c.session_id = cs.id
            WHERE c.client_reported_rupture AND {alive_check}
              AND NOT EXISTS (
                  SELECT 1 FROM ruptures_ruptureevent r WHERE r.session_id = cs.id AND r.deleted_at IS NULL
              )
              AND NOT EXISTS (
                  SELECT 1 FROM checks_alliancecheck t
                  WHERE t.session_id = cs.id AND t.respondent = 'therapist' AND t.tension = 'yes'
                    AND t.deleted_at IS NULL
              )
            UNION ALL
            SELECT last.check_id, u.id, last.intensity, 'drop', 2, false
            FROM upcoming u
            CROSS JOIN LATERAL (
                SELECT c.id AS check_id, c.intensity, c.together, cs.starts_at
                FROM therapy_sessions_therapysession cs
                JOIN checks_alliancecheck c ON c.session_id = cs.id
                WHERE cs.client_id = u.client_id AND cs.starts_at < u.starts_at AND cs.deleted_at IS NULL
                  AND {alive_check}
                ORDER BY cs.starts_at DESC
                LIMIT 1
            ) AS last
            CROSS JOIN LATERAL (
                SELECT c.together FROM therapy_sessions_therapysession cs
                JOIN checks_alliancecheck c ON c.session_id = cs.id
                WHERE cs.client_id = u.client_id AND cs.starts_at < last.starts_at AND cs.deleted_at IS NULL
                  AND {alive_check} AND c.together IS NOT NULL
                ORDER BY cs.starts_at DESC
                LIMIT 1
            ) AS previous
            -- The drop is about the client's last session: none held since.
            WHERE previous.together - last.together >= %(drop)s
              AND NOT EXISTS (
                  SELECT 1 FROM therapy_sessions_therapysession h
                  WHERE h.client_id = u.client_id AND h.status = {_HELD}
                    AND h.starts_at > last.starts_at AND h.starts_at < u.starts_at AND h.deleted_at IS NULL
              )
        ),
        raised AS (
            INSERT INTO reminders_flag (reason, check_id, session_id, raised_at, escalated, carried_over)
            SELECT pair.reason, pair.check_id, pair.session_id, %(clock)s,
                   COALESCE(pair.intensity >= %(escalating)s, false) OR pair.carried_over, pair.carried_over
            FROM (
                -- One flag per (check, session): unlogged before drop.
                SELECT DISTINCT ON (check_id, session_id) * FROM candidates
                ORDER BY check_id, session_id, rank
            ) AS pair
            WHERE NOT EXISTS (
                SELECT 1 FROM reminders_flag done
                WHERE done.check_id = pair.check_id AND done.session_id = pair.session_id
                  AND done.reason IN ('unlogged', 'drop')
            )
            ORDER BY pair.check_id, pair.session_id
            ON CONFLICT (check_id, session_id) WHERE reason IN ('unlogged', 'drop') DO NOTHING
            RETURNING check_id, session_id, escalated, reason
        )
        SELECT c.key, u.key, cl.code, t.username, raised.escalated, raised.reason
        FROM raised
        JOIN checks_alliancecheck c ON c.id = raised.check_id
        JOIN therapy_sessions_therapysession u ON u.id = raised.session_id
        JOIN therapy_sessions_client cl ON cl.id = u.client_id
        JOIN accounts_user t ON t.id = cl.therapist_id
        ORDER BY u.starts_at, cl.code, c.key
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return tuple(
            RaisedFlag(rupture=None, session=session, client=code, therapist=username, escalated=escalated,
                       reason=reason, check=key)
            for key, session, code, username, escalated, reason in cursor.fetchall()
        )


def notify_pending(*, now, client_id=None, clock=None) -> Notified:
    """E-mail every flag not yet e-mailed, whoever raised it: therapists, then supervisors.

    Only flags still worth a reminder: the rupture is open and the session still ahead.
    """
    clock = clock or timezone.now()
    therapists = _notify_therapists(now=now, client_id=client_id, clock=clock)
    supervisors = _notify_supervisors(now=now, client_id=client_id, clock=clock)
    return Notified(
        flags=therapists.flags, escalations=supervisors.escalations,
        emails=therapists.emails + supervisors.emails, failed=therapists.failed + supervisors.failed,
    )


def _still_due(client_id):
    """A flag still worth an e-mail: its rupture open, or its client's check still on record."""
    only_client = "AND u.client_id = %(client)s" if client_id is not None else ""
    return f"""
        u.id = f.session_id AND c.id = u.client_id
        AND (
            (f.reason = 'rupture' AND EXISTS (
                SELECT 1 FROM ruptures_ruptureevent r
                WHERE r.id = f.rupture_id AND r.repair_status IN ({_OPEN}) AND r.deleted_at IS NULL
            ))
            OR (f.reason IN ('unlogged', 'drop') AND EXISTS (
                SELECT 1 FROM checks_alliancecheck k WHERE k.id = f.check_id AND k.deleted_at IS NULL
            ))
        )
        AND u.deleted_at IS NULL AND c.deleted_at IS NULL AND f.deleted_at IS NULL
        AND u.status = {_SCHEDULED} AND u.starts_at >= %(now)s
        {only_client}
    """


def claim_for_therapists(*, now, clock, client_id=None) -> list[tuple[int, int, int]]:
    """Claim the flags to e-mail to therapists: [(flag id, therapist id, session id)].

    One conditional UPDATE: of two sweeps claiming at once, the second waits for the
    first's row locks, re-reads `claimed_at` and skips what the first took.
    """
    sql = f"""
        UPDATE reminders_flag AS f SET claimed_at = %(clock)s
        FROM therapy_sessions_therapysession u, therapy_sessions_client c, accounts_user t
        WHERE {_still_due(client_id)}
          AND t.id = c.therapist_id AND t.is_active AND t.email <> ''
          AND f.notified_at IS NULL
          AND (f.claimed_at IS NULL OR f.claimed_at < %(stale)s)
        RETURNING f.id, t.id, u.id
    """
    params = {"now": now, "clock": clock, "stale": clock - CLAIM_LEASE, "client": client_id}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def claim_for_supervisors(*, now, clock, client_id=None) -> list[tuple[int, int]]:
    """Claim the escalated flags to e-mail to supervisors: [(flag id, therapist id)]."""
    sql = f"""
        UPDATE reminders_flag AS f SET escalation_claimed_at = %(clock)s
        FROM therapy_sessions_therapysession u, therapy_sessions_client c
        WHERE {_still_due(client_id)}
          AND f.escalated
          AND f.escalation_notified_at IS NULL
          AND (f.escalation_claimed_at IS NULL OR f.escalation_claimed_at < %(stale)s)
          AND {_HAS_CURRENT_SUPERVISOR}
        RETURNING f.id, c.therapist_id
    """
    params = {
        "now": now, "clock": clock, "stale": clock - CLAIM_LEASE, "client": client_id,
        "today": timezone.localdate(now),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _notify_therapists(*, now, client_id, clock) -> Notified:
    claimed = claim_for_therapists(now=now, clock=clock, client_id=client_id)
    if not claimed:
        return Notified()
    flags, sessions = defaultdict(list), defaultdict(set)
    for flag_id, therapist_id, session_id in claimed:
        flags[therapist_id].append(flag_id)
        sessions[therapist_id].add(session_id)
    people = User.objects.in_bulk(list(flags))
    letters = [
        (flags[pk], _letter("therapist", people[pk], {
            "flags": len(flags[pk]), "sessions": len(sessions[pk]),
        }))
        for pk in sorted(flags)
    ]
    outcome = _send(letters)
    _settle("claimed_at", "notified_at", clock=clock, sent=outcome.sent, unsent=outcome.failed)
    return Notified(flags=len(outcome.sent), emails=outcome.emails, failed=outcome.emails_failed)


def _notify_supervisors(*, now, client_id, clock) -> Notified:
    before_sessions = claim_for_supervisors(now=now, clock=clock, client_id=client_id)
    stalled = claim_stalled_for_supervisors(now=now, clock=clock, client_id=client_id)
    claimed = before_sessions + stalled
    if not claimed:
        return Notified()
    stalled_ids = {pk for pk, _ in stalled}

    def counts(ids):
        # Said apart: a stalled flag has no session, the others are before one.
        n_stalled = sum(pk in stalled_ids for pk in ids)
        return {"flags": len(ids), "before_sessions": len(ids) - n_stalled, "stalled": n_stalled,
                "stalled_days": settings.STALLED_ESCALATE_DAYS}

    outcome = _send(_supervisor_letters(claimed, now=now, template="supervisor", counts=counts))
    # A flag goes to every current supervisor of its therapist: it is done once one
    # e-mail carrying it went out. The rest (a failed e-mail, or a supervision that
    # ended between the claim and the read) are handed back for a later sweep.
    unsent = {pk for pk, _ in claimed} - outcome.sent
    _settle("escalation_claimed_at", "escalation_notified_at", clock=clock, sent=outcome.sent, unsent=unsent)
    return Notified(escalations=len(outcome.sent), emails=outcome.emails, failed=outcome.emails_failed)


def _settle(claimed, notified, *, clock, sent, unsent, table="reminders_flag"):
    """Mark the sent flags notified and hand the unsent back, in one statement.

    Only rows this sweep still holds (claimed at `clock`) are touched: a claim taken
    over after the lease belongs to the sweep that took it.
    """
    if not sent and not unsent:
        return
    sql = f"""
        UPDATE {table}
        SET {notified} = CASE WHEN id = ANY(%(sent)s) THEN %(now)s END,
            {claimed} = CASE WHEN id = ANY(%(sent)s) THEN {claimed} END
        WHERE id = ANY(%(touched)s) AND {claimed} = %(clock)s AND {notified} IS NULL
    """
    params = {"sent": sorted(sent), "touched": sorted(sent | unsent), "now": timezone.now(), "clock": clock}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _letter(audience, person, counts):
    """The e-mail for one person: counts and a link, never a case code or clinical text."""
    context = {"person": person, "home_url": settings.SITE_URL.rstrip("/") + reverse("home"), **counts}
    subject = render_to_string(f"reminders/email_{audience}_subject.txt", context)
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=render_to_string(f"reminders/email_{audience}.txt", context),
        to=[person.email],
    )
    message.attach_alternative(render_to_string(f"reminders/email_{audience}.html", context), "text/html")
    return message


@dataclass
class _Outcome:
    sent: set  # flag ids carried by an e-mail that went out
    failed: set  # flag ids carried by an e-mail that did not
    emails: int = 0
    emails_failed: int = 0


def _send(letters) -> _Outcome:
    """Send each letter over one connection to the mail server."""
    outcome = _Outcome(sent=set(), failed=set())
    mailer = get_connection()
    try:
        mailer.open()
    except Exception as exc:  # an unreachable mail server: every letter waits for a later sweep
        logger.warning("Reminder e-mails not sent: no connection to the mail server (%s).",
                       exc.__class__.__name__)
        outcome.failed = {pk for flag_ids, _ in letters for pk in flag_ids}
        outcome.emails_failed = len(letters)
        return outcome
    try:
        for flag_ids, message in letters:
            message.connection = mailer
            try:
                message.send()
            except Exception as exc:  # one bad address must not hold back the others
                logger.warning("A reminder e-mail was not sent (%s).", exc.__class__.__name__)
                outcome.failed.update(flag_ids)
                outcome.emails_failed += 1
            else:
                outcome.sent.update(flag_ids)
                outcome.emails += 1
    finally:
        mailer.close()
    return outcome


def record_heartbeat(*, raised: int, notified: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO reminders_sweepheartbeat (id, finished_at, raised, notified)
            VALUES (1, %(at)s, %(raised)s, %(notified)s)
            ON CONFLICT (id) DO UPDATE
            SET finished_at = EXCLUDED.finished_at, raised = EXCLUDED.raised, notified = EXCLUDED.notified
            """,
            {"at": timezone.now(), "raised": raised, "notified": notified},
        )
