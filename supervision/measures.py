"""Caseload measures for the supervision pages, computed in PostgreSQL.

One query whatever the size of the caseload, weekly trend included. It makes one pass
over the clients' sessions that some measure counts (the period's and the trend's, each
client's last five held ones, and those with a rupture still open: never the rest of a
long history) and their ruptures, and aggregates with GROUPING SETS, so the rows of a
table and its totals (per therapist and for the whole team, or per supervisor, per
therapist and for the clinic) come from the same pass. Definitions, as the pages state them:

- ruptures in the period: ruptures logged for held sessions that started in the period;
- ruptures per held session: those ruptures over the sessions held in the period;
- repair rate: ruptures in the period whose status is now resolved or partially resolved,
  over all ruptures in the period;
- days to repair: for each of those repaired ruptures, the days from the rupture's session
  to the session of the first attempt whose outcome was resolved or partially resolved
  (a status set without any attempt has no date, so it does not count); the median of them;
- open now: ruptures of any date whose status is unaddressed, attempted or unresolved;
- recurring pattern (domain.md section 6): the same marker in at least two of the client's
  five most recent held sessions up to the end of the period;
- not yet discussed: ruptures in the period without a supervision note.

The alliance report (reports/metrics.py) reads the same query, so the dashboard and every
report format share each definition; the further columns it needs are defined here too:

- logged sessions: held sessions of the period with a rupture logged, "no rupture" noted, or
  the therapist's alliance check answered;
- each repair status on its own (resolved, partially resolved, unresolved, attempted,
  unaddressed), counted over the ruptures in the period, as their status is now;
- repaired in the same session: ruptures in the period with an attempt in the rupture's own
  session whose outcome was resolved or partially resolved;
- open over 14 days: ruptures in the period still open at the report's time (`as_of`)
  whose session began more than 14 days before it.

The kind filter, when set, applies to every rupture count, including the markers that
make a pattern.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import Count, FilteredRelation, OuterRef, Q
from django.utils import timezone

from checks import meaning
from checks.models import AllianceCheck, unlogged_at
from ruptures import vocabulary as v
from ruptures.models import RepairAttempt, RuptureEvent
from sessions.models import Client, SessionStatus, TherapySession
from supervision.models import SupervisionNote

TREND_WEEKS = 12
# domain.md section 6, as the strategy engine applies it (one home: ruptures.vocabulary).
RECURRENCE_WINDOW = v.RECURRENCE_WINDOW
RECURRENCE_MIN_SESSIONS = v.RECURRENCE_MIN_SESSIONS
REPAIRED_STATUSES = v.REPAIRED_STATUSES
OPEN_TOO_LONG_DAYS = 14
# Each repair status counted on its own, never merged.
STATUS_SLUGS = ("resolved", "partially_resolved", "unresolved", "attempted", "unaddressed")
# The (therapist, client) answers to `tension` that Measures.tension_pairs counts, in order.
TENSION_PAIRS = (("yes", "yes"), ("no", "no"), ("yes", "no"), ("no", "yes"))
# The order in which grouping columns appear in GROUPING(...) and in result keys.
COLUMNS = ("group_id", "therapist_id", "client_id")


def local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive: a period "to 23 Nov" counts sessions on 23 Nov

    @property
    def start_at(self) -> datetime:
        return local_midnight(self.start)

    @property
    def end_at(self) -> datetime:
        return local_midnight(self.end + timedelta(days=1))

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def trend_week_starts(self) -> list[date]:
        """The first days of the TREND_WEEKS seven-day weeks that end with the period."""
        after = self.end + timedelta(days=1)
        return [after - timedelta(weeks=TREND_WEEKS - i) for i in range(TREND_WEEKS)]


@dataclass
class Week:
    starts_on: date
    held: int = 0
    ruptures: int = 0

    @property
    def ends_on(self) -> date:
        return self.starts_on + timedelta(days=6)

    @property
    def per_session(self) -> float | None:
        return self.ruptures / self.held if self.held else None


def _ratio(part, whole):
    return part / whole if whole else None


@dataclass
class Measures:
    active_clients: int = 0
    held_sessions: int = 0
    recurring_clients: int = 0
    # Client rows only: marker slug -> in how many of the last five held sessions.
    recurring_markers: dict[str, int] = field(default_factory=dict)
    ruptures: int = 0
    withdrawal: int = 0
    confrontation: int = 0
    client_side: int = 0
    therapist_side: int = 0
    repaired: int = 0
    median_days: float | None = None
    open_now: int = 0
    open_flags: int = 0
    undiscussed: int = 0
    logged_sessions: int = 0
    resolved: int = 0
    partially_resolved: int = 0
    unresolved: int = 0
    attempted: int = 0
    unaddressed: int = 0
    repaired_same_session: int = 0
    repair_dated: int = 0  # repaired ruptures whose days to repair are known
    open_over_14_days: int = 0
    # The alliance checks of the period's held sessions (checks.meaning, §8a).
    therapist_checks: int = 0
    client_checks: int = 0
    client_reported: int = 0
    unlogged: int = 0
    # Tension answers of both sides, as TENSION_PAIRS orders them.
    tension_pairs: tuple[int, int, int, int] = (0, 0, 0, 0)
    weeks: list[Week] = field(default_factory=list)

    @property
    def therapist_completion(self) -> float | None:
        return _ratio(self.therapist_checks, self.held_sessions)

    @property
    def client_completion(self) -> float | None:
        return _ratio(self.client_checks, self.held_sessions)

    @property
    def client_reported_rate(self) -> float | None:
        return _ratio(self.client_reported, self.client_checks)

    @property
    def agreement(self) -> meaning.Agreement:
        yy, nn, yn, ny = self.tension_pairs
        return meaning.agreement_from_counts(yes_yes=yy, no_no=nn, yes_no=yn, no_yes=ny)

    @property
    def tension_kappa(self) -> float | None:
        return self.agreement.kappa

    @property
    def per_session(self) -> float | None:
        return _ratio(self.ruptures, self.held_sessions)

    @property
    def repair_rate(self) -> float | None:
        return _ratio(self.repaired, self.ruptures)

    @property
    def trend_change(self) -> float | None:
        """Ruptures per held session in the last four weeks minus in the first four."""
        first, last = self.weeks[:4], self.weeks[-4:]
        before = _ratio(sum(w.ruptures for w in first), sum(w.held for w in first))
        after = _ratio(sum(w.ruptures for w in last), sum(w.held for w in last))
        if before is None or after is None:
            return None
        return after - before

    def recurring_marker_labels(self) -> list[str]:
        labels = dict(v.MARKERS)
        return [
            f"{labels.get(m, m)} ({n} of {RECURRENCE_WINDOW})"
            for m, n in self.recurring_markers.items()
        ]


Grouping = tuple[str, ...]


def measure(team: list[tuple[int, int | None]], period: Period, kind: str,
            sets: tuple[Grouping, ...], *, as_of: datetime | None = None,
            ) -> dict[Grouping, dict[tuple, Measures]]:
    """Measures of the caseloads of `team`, grouped by each of `sets`.

    `team` pairs each therapist's id with a group id (their supervisor's, for the clinic
    report; anything for the other pages). Each grouping set names columns of COLUMNS:
    ("therapist_id",) gives one row per therapist, ("client_id",) one per client, and
    () the total. The answer maps each set to {key: Measures}, where the key holds the
    set's column values in order. A therapist without any client has no row.
    """
    if not team:
        return {s: {} for s in sets}
    for s in sets:
        if not set(s) <= set(COLUMNS):
            raise ValueError(f"unknown grouping column in {s!r}")
    cols = [c for c in COLUMNS if any(c in s for s in sets)]
    trend_start = local_midnight(period.trend_week_starts()[0])
    params = {
        "therapists": [t for t, _ in team],
        "groups": [g for _, g in team],
        "start": period.start_at,
        "end": period.end_at,
        "kind": kind or "",
        "open": sorted(v.OPEN_STATUSES),
        "repaired": list(REPAIRED_STATUSES),
        "held": SessionStatus.HELD.value,
        "tz": timezone.get_current_timezone_name(),
        "window": RECURRENCE_WINDOW,
        "min_sessions": RECURRENCE_MIN_SESSIONS,
        "trend_start": trend_start,
        "since": min(period.start_at, trend_start),
        "bounds": [local_midnight(d) for d in period.trend_week_starts()] + [period.end_at],
        "active": "active",
        "too_long": (as_of or timezone.now()) - timedelta(days=OPEN_TOO_LONG_DAYS),
    }
    results: dict[Grouping, dict[tuple, Measures]] = {s: {} for s in sets}
    masks = {_mask(cols, s): s for s in sets}
    starts = period.trend_week_starts()
    with connection.cursor() as cursor:
        cursor.execute(_measures_sql(cols, sets), params)
        names = [d.name for d in cursor.description]
        for row in cursor.fetchall():
            row = dict(zip(names, row, strict=True))
            grouping = masks[row["lvl"]]
            measures = _measures_from(row)
            measures.weeks = [
                Week(day, held=int(row[f"held_w{i}"]), ruptures=row[f"ruptures_w{i}"] or 0)
                for i, day in enumerate(starts, start=1)
            ]
            results[grouping][tuple(row[c] for c in grouping)] = measures
    _add_open_flags(results, team, sets)
    _add_check_figures(results, team, period, sets)
    return results


def _fold(results, sets, group_of, therapist_id, client_id, add):
    ids = {"therapist_id": therapist_id, "client_id": client_id, "group_id": group_of[therapist_id]}
    for grouping in sets:
        measures = results[grouping].get(tuple(ids[c] for c in grouping))
        if measures is not None:
            add(measures)


def _add_check_figures(results, team, period, sets):
    """The checks of the period's held sessions: one more query, a row per client.

    Completion counts answered checks (a client's "rather not answer" is not one); the
    agreement pairs both sides' `tension` of one session (its 2x2 table, which
    checks.meaning turns into a share and a kappa); unlogged is checks.models.unlogged_at,
    the rule the caseload's list of unlogged checks applies too. Counted in SQL, a row
    per client: a clinic's report would otherwise carry every session of the period to
    Python. Each session's checks and ruptures are read through their session indexes.
    """
    group_of = dict(team)

    def side(respondent):
        return FilteredRelation("checks", condition=Q(checks__respondent=respondent, checks__deleted_at__isnull=True))

    def sessions(condition):
        return Count("pk", filter=condition)

    reported = Q(k__client_reported_rupture=True)
    rows = (
        TherapySession.objects.filter(
            client__therapist_id__in=list(group_of), client__deleted_at__isnull=True,
            status=SessionStatus.HELD, starts_at__gte=period.start_at, starts_at__lt=period.end_at,
        )
        .annotate(t=side("therapist"), k=side("client"))
        .values_list("client__therapist_id", "client_id")
        .annotate(
            answered_t=sessions(Q(t__declined=False)), answered_k=sessions(Q(k__declined=False)),
            reported=sessions(reported),
            unlogged=sessions(reported & unlogged_at(OuterRef("pk"))),
            **{f"{therapist}_{client}": sessions(Q(t__tension=therapist, k__tension=client))
               for therapist, client in TENSION_PAIRS},
        )
        .order_by()
    )
    for therapist_id, client_id, answered_t, answered_k, n_reported, n_unlogged, *pairs in rows:

        def add(m, answered_t=answered_t, answered_k=answered_k, n_reported=n_reported,
                n_unlogged=n_unlogged, pairs=pairs):
            m.therapist_checks += answered_t
            m.client_checks += answered_k
            m.client_reported += n_reported
            m.unlogged += n_unlogged
            m.tension_pairs = tuple(x + y for x, y in zip(m.tension_pairs, pairs, strict=True))
        _fold(results, sets, group_of, therapist_id, client_id, add)


def unlogged_in(period):
    """Unlogged client-reported ruptures of the period's held sessions of clients still on record."""
    return AllianceCheck.objects.unlogged().filter(
        session__status=SessionStatus.HELD, session__starts_at__gte=period.start_at,
        session__starts_at__lt=period.end_at, session__client__deleted_at__isnull=True,
    )


def _add_open_flags(results, team, sets):
    """Open flags (reminders still due before a session) for each row: one more query."""
    from reminders.models import Flag

    group_of = dict(team)
    # The caseload's clients first, by their therapist index (Flag.objects.of_clients).
    therapist_of = dict(Client.objects.filter(therapist_id__in=list(group_of)).values_list("pk", "therapist_id"))
    counts = (
        Flag.objects.open().of_clients(therapist_of)
        .values_list("session__client_id").annotate(n=Count("pk")).order_by()
    )
    for client_id, n in counts:

        def add(m, n=n):
            m.open_flags += n
        _fold(results, sets, group_of, therapist_of[client_id], client_id, add)


def _mask(cols, grouping):
    # GROUPING(a, b, c) sets the bit of each column that is *not* grouped, first column
    # highest, which is how a row says which grouping set it belongs to.
    mask = 0
    for col in cols:
        mask = (mask << 1) | (col not in grouping)
    return mask


def _measures_from(row):
    markers = {}
    for item in row["recurring_markers"] or []:
        marker, _, n = item.rpartition(":")
        markers[marker] = int(n)
    median = row["median_days"]
    return Measures(
        active_clients=row["active_clients"],
        held_sessions=int(row["held_sessions"]),
        recurring_clients=row["recurring_clients"],
        recurring_markers=markers,
        ruptures=row["ruptures"] or 0,
        withdrawal=row["withdrawal"] or 0,
        confrontation=row["confrontation"] or 0,
        client_side=row["client_side"] or 0,
        therapist_side=row["therapist_side"] or 0,
        repaired=row["repaired"] or 0,
        median_days=float(median) if median is not None else None,
        open_now=row["open_now"] or 0,
        undiscussed=row["undiscussed"] or 0,
        logged_sessions=int(row["logged_sessions"]),
        resolved=row["resolved"] or 0,
        partially_resolved=row["partially_resolved"] or 0,
        unresolved=row["unresolved"] or 0,
        attempted=row["attempted"] or 0,
        unaddressed=row["unaddressed"] or 0,
        repaired_same_session=row["repaired_same_session"] or 0,
        repair_dated=row["repair_dated"] or 0,
        open_over_14_days=row["open_over_14_days"] or 0,
    )


def _alive(model, alias):
    """The filter raw SQL needs for a model whose rows are soft-deleted (a `deleted_at`
    column, audit.records.ClinicalRecord on main), and nothing for one without."""
    fields = {f.name for f in model._meta.get_fields()}
    return f" AND {alias}.deleted_at IS NULL" if "deleted_at" in fields else ""


def _probe(from_where):
    """Whether `from_where` finds a row, asked row by row through an index.

    Not EXISTS: inside a CASE the planner keeps EXISTS as two alternative plans and, on
    its cost alone, may pick the one that hashes the whole table up front (it did on
    PostgreSQL 18 with a small clinic's statistics). That grows with the clinic; this
    probe grows with the caseload. A scalar subquery with LIMIT has no hashed form.
    (The ORM's form of the same: config.lookups.finds_none.)
    """
    return f"((SELECT TRUE {from_where} LIMIT 1) IS NOT NULL)"


def _tables():
    return {
        "client": Client._meta.db_table,
        "session": TherapySession._meta.db_table,
        "rupture": RuptureEvent._meta.db_table,
        "attempt": RepairAttempt._meta.db_table,
        "note": SupervisionNote._meta.db_table,
        "check": AllianceCheck._meta.db_table,
    }


def _grouping_sql(prefix, cols, sets, extra=()):
    """GROUPING(...) and GROUPING SETS (...) over `prefix`-qualified columns."""
    # Each column with its leading comma, so that an empty list leaves valid SQL.
    qualified = "".join(f", {prefix}.{c}" for c in cols)
    grouping = f"GROUPING({', '.join(f'{prefix}.{c}' for c in cols)})" if cols else "0"
    grouping_sets = ", ".join(
        "(" + ", ".join([f"{prefix}.{c}" for c in s] + list(extra)) + ")" for s in sets
    )
    return grouping, qualified, f"GROUPING SETS ({grouping_sets})"


def _measures_sql(cols, sets):
    c_grouping, c_cols, c_sets = _grouping_sql("sc", cols, sets)
    r_grouping, r_cols, r_sets = _grouping_sql("rp", cols, sets)
    join_on = " AND ".join(
        ["ra.lvl = ca.lvl"] + [f"ra.{c} IS NOT DISTINCT FROM ca.{c}" for c in cols]
    )
    weeks = range(1, TREND_WEEKS + 1)
    held_weeks = "".join(f", count(*) FILTER (WHERE ss.week = {i}) AS held_w{i}" for i in weeks)
    held_sums = "".join(f", coalesce(sum(h.held_w{i}), 0) AS held_w{i}" for i in weeks)
    rupture_weeks = "".join(
        f", count(*) FILTER (WHERE rp.week = {i}) AS ruptures_w{i}" for i in weeks
    )
    rupture_cols = "".join(f", ra.ruptures_w{i}" for i in weeks)
    repaired = "rp.in_period AND rp.repair_status = ANY(%(repaired)s::text[])"
    # Slugs from the vocabulary, never from input, so they are safe to spell into SQL.
    statuses = ",\n".join(
        f"count(*) FILTER (WHERE rp.in_period AND rp.repair_status = '{slug}') AS {slug}"
        for slug in STATUS_SLUGS
    )
    status_cols = ", ".join(f"ra.{slug}" for slug in STATUS_SLUGS)
    read_cols = "s.id, s.client_id, s.starts_at, s.status, s.no_rupture_noted_at"
    session_alive = _alive(TherapySession, "s")
    sql = f"""
    WITH team AS (
        SELECT * FROM unnest(%(therapists)s::bigint[], %(groups)s::bigint[])
            AS t(therapist_id, group_id)
    ),
    scope AS (
        SELECT c.id AS client_id, c.therapist_id, team.group_id, c.status
        FROM {{client}} c JOIN team ON team.therapist_id = c.therapist_id
        -- Said twice so that the clients are found through their therapist index, not
        -- by hashing every client of the clinic.
        WHERE c.therapist_id = ANY(%(therapists)s::bigint[]){_alive(Client, "c")}
    ),
    -- The sessions some measure reads, and no older ones, so that the cost follows the
    -- period and the caseload rather than the clinic's age: the trend's and the period's,
    -- each client's last RECURRENCE_WINDOW held sessions before the period's end (the
    -- pattern), and the sessions of the clients' open ruptures, of any date (open now).
    read AS (
        SELECT {read_cols} FROM scope sc JOIN {{session}} s ON s.client_id = sc.client_id
        WHERE s.starts_at >= %(since)s AND s.starts_at < %(end)s{session_alive}
        UNION
        SELECT last.* FROM scope sc CROSS JOIN LATERAL (
            SELECT {read_cols} FROM {{session}} s
            WHERE s.client_id = sc.client_id AND s.status = %(held)s
                  AND s.starts_at < %(end)s{session_alive}
            ORDER BY s.starts_at DESC, s.id DESC LIMIT %(window)s
        ) AS last
        UNION
        SELECT {read_cols}
        FROM scope sc JOIN {{rupture}} r ON r.session_client_id = sc.client_id
             JOIN {{session}} s ON s.id = r.session_id
        WHERE r.repair_status = ANY(%(open)s::text[]){_alive(RuptureEvent, "r")}{session_alive}
    ),
    -- One pass over those sessions that every measure below reads. `nth` numbers each
    -- client's held sessions up to the end of the period, newest first: domain.md's
    -- "previous five sessions" are those with nth <= 5 (the five newest are all read, so
    -- their numbers are right; older ones read for another reason number after them).
    sess AS MATERIALIZED (
        SELECT s.id, s.client_id, s.starts_at, sc.therapist_id, sc.group_id,
               s.status = %(held)s AND s.starts_at >= %(start)s AND s.starts_at < %(end)s
                   AS in_period,
               CASE WHEN s.status = %(held)s AND s.starts_at < %(end)s THEN row_number() OVER (
                   PARTITION BY s.client_id, s.status = %(held)s AND s.starts_at < %(end)s
                   ORDER BY s.starts_at DESC, s.id DESC
               ) END AS nth,
               CASE WHEN s.status = %(held)s AND s.starts_at >= %(trend_start)s
                         AND s.starts_at < %(end)s
                    THEN width_bucket(s.starts_at, %(bounds)s::timestamptz[]) END AS week,
               CASE WHEN s.status = %(held)s AND s.starts_at >= %(start)s AND s.starts_at < %(end)s
                    THEN s.no_rupture_noted_at IS NOT NULL OR {_probe(f'''
                        FROM {{rupture}} lr WHERE lr.session_id = s.id{_alive(RuptureEvent, "lr")}
                    ''')} OR {_probe(f'''
                        FROM {{check}} tc
                        WHERE tc.session_id = s.id AND tc.respondent = 'therapist'
                              AND NOT tc.declined{_alive(AllianceCheck, "tc")}
                    ''')} ELSE FALSE END AS logged
        FROM read s JOIN scope sc ON sc.client_id = s.client_id
    ),
    -- The ruptures any measure counts: the period's, the trend's, those of the last five
    -- sessions, and the open ones of any date.
    rup AS MATERIALIZED (
        SELECT ss.client_id, ss.therapist_id, ss.group_id, ss.id AS session_id, ss.in_period,
               ss.nth, ss.week, r.kind, r.actor, r.repair_status, r.markers,
               r.repair_status = ANY(%(open)s::text[]) AS is_open,
               CASE WHEN ss.in_period THEN {_probe('FROM {note} n WHERE n.rupture_id = r.id')}
               END AS discussed,
               CASE WHEN ss.in_period AND r.repair_status = ANY(%(repaired)s::text[]) THEN (
                   SELECT (min(a_s.starts_at) AT TIME ZONE %(tz)s)::date
                   FROM {{attempt}} a JOIN {{session}} a_s ON a_s.id = a.session_id
                   WHERE a.rupture_id = r.id AND a.outcome = ANY(%(repaired)s::text[])
                         {_alive(RepairAttempt, "a")}{_alive(TherapySession, "a_s")}
               ) - (ss.starts_at AT TIME ZONE %(tz)s)::date END AS days_to_repair,
               CASE WHEN ss.in_period AND r.repair_status = ANY(%(repaired)s::text[]) THEN {_probe(f'''
                   FROM {{attempt}} sa
                   WHERE sa.rupture_id = r.id AND sa.session_id = r.session_id
                         AND sa.outcome = ANY(%(repaired)s::text[]){_alive(RepairAttempt, "sa")}
               ''')} END AS repaired_in_session,
               ss.starts_at < %(too_long)s AS long_ago
        -- Each session's ruptures through their session index. As a join, the planner may
        -- hash the whole table (which grows with the clinic, not this caseload) or, misled
        -- by the estimate of `read`, compare every session with every rupture; OFFSET 0
        -- keeps the subquery from being flattened into such a join.
        FROM sess ss CROSS JOIN LATERAL (
            SELECT * FROM {{rupture}} r WHERE r.session_id = ss.id{_alive(RuptureEvent, "r")} OFFSET 0
        ) AS r
        WHERE (%(kind)s::text = '' OR r.kind = %(kind)s::text)
          AND (ss.in_period OR ss.week IS NOT NULL OR ss.nth <= %(window)s
               OR r.repair_status = ANY(%(open)s::text[]))
    ),
    held AS (
        SELECT ss.client_id, count(*) FILTER (WHERE ss.in_period) AS n,
               count(*) FILTER (WHERE ss.logged) AS logged{held_weeks}
        FROM sess ss
        GROUP BY ss.client_id
    ),
    recurring AS (
        SELECT client_id,
               array_agg(marker || ':' || sessions ORDER BY sessions DESC, marker) AS markers
        FROM (
            SELECT rp.client_id, m.marker, count(DISTINCT rp.session_id) AS sessions
            FROM rup rp CROSS JOIN LATERAL unnest(rp.markers) AS m(marker)
            WHERE rp.nth <= %(window)s
            GROUP BY rp.client_id, m.marker
            HAVING count(DISTINCT rp.session_id) >= %(min_sessions)s
        ) AS marks
        GROUP BY client_id
    ),
    clients_agg AS (
        SELECT {c_grouping} AS lvl{c_cols},
               count(*) FILTER (WHERE sc.status = %(active)s) AS active_clients,
               coalesce(sum(h.n), 0) AS held_sessions,
               coalesce(sum(h.logged), 0) AS logged_sessions,
               count(rc.client_id) AS recurring_clients,
               max(rc.markers) AS recurring_markers{held_sums}
        FROM scope sc
        LEFT JOIN held h ON h.client_id = sc.client_id
        LEFT JOIN recurring rc ON rc.client_id = sc.client_id
        GROUP BY {c_sets}
    ),
    ruptures_agg AS (
        SELECT {r_grouping} AS lvl{r_cols},
               count(*) FILTER (WHERE rp.in_period) AS ruptures,
               count(*) FILTER (WHERE rp.in_period AND rp.kind = 'withdrawal') AS withdrawal,
               count(*) FILTER (WHERE rp.in_period AND rp.kind = 'confrontation')
                   AS confrontation,
               count(*) FILTER (WHERE rp.in_period AND rp.actor = 'client') AS client_side,
               count(*) FILTER (WHERE rp.in_period AND rp.actor = 'therapist')
                   AS therapist_side,
               count(*) FILTER (WHERE {repaired}) AS repaired,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY rp.days_to_repair)
                   FILTER (WHERE {repaired} AND rp.days_to_repair IS NOT NULL) AS median_days,
               count(*) FILTER (WHERE rp.is_open) AS open_now,
               count(*) FILTER (WHERE rp.in_period AND NOT rp.discussed) AS undiscussed,
               {statuses},
               count(*) FILTER (WHERE rp.repaired_in_session) AS repaired_same_session,
               count(*) FILTER (WHERE {repaired} AND rp.days_to_repair IS NOT NULL) AS repair_dated,
               count(*) FILTER (WHERE rp.in_period AND rp.is_open AND rp.long_ago) AS open_over_14_days
               {rupture_weeks}
        FROM rup rp
        GROUP BY {r_sets}
    )
    SELECT ca.*, ra.ruptures, ra.withdrawal, ra.confrontation, ra.client_side,
           ra.therapist_side, ra.repaired, ra.median_days, ra.open_now,
           ra.undiscussed, {status_cols}, ra.repaired_same_session, ra.repair_dated,
           ra.open_over_14_days{rupture_cols}
    FROM clients_agg ca LEFT JOIN ruptures_agg ra ON {join_on}
    """
    return sql.format(**_tables())
