"""Time the reminder sweep by hand: ``python bench/bench_sweep.py [small|large ...]``.

Not a test: timings depend on the machine. For each scale it builds the demo clinic
(sessions.demo) in a scratch database beside DATABASE_URL's (created here, dropped at
the end), then prints:

- the queries one sweep runs: the same number whatever the size of the clinic;
- the baseline: the one SELECT that finds the (rupture, session) pairs the rule flags,
  which any implementation has to pay;
- a first sweep, which raises every flag and sends every e-mail (run inside a
  transaction that is rolled back, so that each repetition does the same work), and a
  later sweep, which finds nothing new; each as a ratio to the baseline.

Needs DATABASE_URL (a PostgreSQL server where it may create a database). The large
clinic (5,000 clients, 100,000 sessions, ~40,000 ruptures) takes a minute or two to build.
"""

import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPEATS = 5
WINDOW = timedelta(hours=48)


def scratch_url(base_url):
    parts = urlsplit(base_url)
    name = parts.path.lstrip("/") or "postgres"
    return urlunsplit(parts._replace(path=f"/{name}_bench_sweep")), f"{name}_bench_sweep"


def recreate(base_url, name):
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')


def drop(base_url, name):
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def best_of(function, repeats=REPEATS):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main(scales):
    base_url = os.environ.get("DATABASE_URL")
    if not base_url:
        sys.exit("Set DATABASE_URL to a PostgreSQL server where a scratch database may be created.")
    url, name = scratch_url(base_url)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    try:
        for scale in scales:
            measure(base_url, name, scale)
    finally:
        from django.db import connections

        connections.close_all()
        drop(base_url, name)


def measure(base_url, name, scale_name):
    from django.core import mail
    from django.core.management import call_command
    from django.db import connection, connections, transaction
    from django.test.utils import CaptureQueriesContext, override_settings
    from django.utils import timezone

    from reminders import sweep as sweeping
    from reminders.models import Flag
    from ruptures.models import RuptureEvent
    from sessions.demo import SCALES, build_demo_clinic

    connections.close_all()
    recreate(base_url, name)
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    now = timezone.now()
    counts = build_demo_clinic(SCALES[scale_name], now=now)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    built = time.perf_counter() - started
    open_ruptures = RuptureEvent.objects.open().count()

    baseline_sql = f"""
        SELECT r.id, u.id
        FROM therapy_sessions_therapysession u
        JOIN therapy_sessions_therapysession rs ON rs.client_id = u.client_id AND rs.starts_at < u.starts_at
        JOIN ruptures_ruptureevent r ON r.session_id = rs.id
        WHERE u.status = 'scheduled' AND u.starts_at >= %s AND u.starts_at <= %s
          AND r.repair_status IN ({sweeping._OPEN})
    """

    def baseline():
        with connection.cursor() as cursor:
            cursor.execute(baseline_sql, [now, now + WINDOW])
            return cursor.fetchall()

    class Rollback(Exception):
        pass

    def first_sweep():
        mail.outbox = []
        try:
            with transaction.atomic():
                result = sweeping.sweep(now=now, window=WINDOW)
                raise Rollback(result)
        except Rollback as done:
            return done.args[0]

    def stalled_only():
        try:
            with transaction.atomic():
                raise Rollback(sweeping.raise_stalled_flags(now=now))
        except Rollback as done:
            return done.args[0]

    def raise_only():
        try:
            with transaction.atomic():
                raise Rollback(sweeping.raise_flags(now=now, window=WINDOW))
        except Rollback as done:
            return done.args[0]

    pairs = set(baseline())
    first_sweep()  # warm up: templates compiled, plans cached
    assert not Flag.objects.exists()  # rolled back
    baseline_time, baseline_median = best_of(baseline)
    raise_time, raise_median = best_of(raise_only)
    stalled_time, stalled_median = best_of(stalled_only)
    first_time, first_median = best_of(first_sweep)
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
        unsent_time, unsent_median = best_of(first_sweep)

    # Committed from here on: a first sweep, then one that finds nothing new.
    with CaptureQueriesContext(connection) as first_queries:
        result = sweeping.sweep(now=now, window=WINDOW)
    with CaptureQueriesContext(connection) as later_queries:
        later = sweeping.sweep(now=now, window=WINDOW)
    later_time, later_median = best_of(lambda: sweeping.sweep(now=now, window=WINDOW))

    raised_pairs = set(Flag.objects.filter(reason="rupture").values_list("rupture_id", "session_id"))
    stalled = Flag.objects.filter(reason="stalled").count()
    print(f"\n== {scale_name} clinic: {counts['clients']} clients, {counts['sessions']} sessions, "
          f"{counts['ruptures']} ruptures ({open_ruptures} open); built in {built:.1f}s")
    print(f"pairs the rule flags: {len(pairs)} (window {WINDOW.total_seconds() / 3600:.0f} h); "
          f"the sweep raised the same pairs: {'yes' if raised_pairs == pairs else 'NO'}; "
          f"and {stalled} stalled flags (open ruptures with no next step)")
    print(f"queries, first sweep: {len(first_queries.captured_queries)} "
          f"({len(result.raised)} flags raised, {result.counts()['emails']} e-mails)")
    print(f"queries, later sweep: {len(later_queries.captured_queries)} "
          f"({len(later.raised)} flags raised, {later.counts()['emails']} e-mails)")
    rows = [
        ("baseline: the SELECT", baseline_time, baseline_median),
        ("raise flags (INSERT)", raise_time, raise_median),
        ("raise stalled (INSERT)", stalled_time, stalled_median),
        ("first sweep, e-mails", first_time, first_median),
        ("  the same, no backend", unsent_time, unsent_median),
        ("later sweep", later_time, later_median),
    ]
    for label, best, median in rows:
        print(f"{label:22s} {best * 1000:8.1f} ms  (median {median * 1000:7.1f})  "
              f"{best / baseline_time:5.2f}x baseline")
    print(f"best and median of {REPEATS} runs each; e-mails to Django's locmem backend, or rendered "
          "but given to the dummy one")


if __name__ == "__main__":
    main(sys.argv[1:] or ["small"])
