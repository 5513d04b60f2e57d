"""Time the research extract by hand: ``python bench/bench_research.py [small|large ...]``.

Not a test: timings depend on the machine. For each scale it builds the demo clinic in a
scratch database beside DATABASE_URL's (created here, dropped at the end), then prints the
time of export_research's ruptures.csv (COPY of its SELECT, written to a file) beside the
baseline: a bare ``COPY (the same SELECT) TO STDOUT`` read and thrown away, on the same
connection. Aim: within 1.5x of the baseline.

Needs DATABASE_URL (a PostgreSQL server where it may create a database).
"""

import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_sweep import drop, recreate  # noqa: E402

REPEATS = 5


def scratch(base_url):
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(base_url)
    name = (parts.path.lstrip("/") or "postgres") + "_bench_research"
    return urlunsplit(parts._replace(path=f"/{name}")), name


def best_of(function):
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main(scales):
    base_url = os.environ.get("DATABASE_URL")
    if not base_url:
        sys.exit("Set DATABASE_URL to a PostgreSQL server where a scratch database may be created.")
    url, name = scratch(base_url)
    os.environ["DATABASE_URL"] = url
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
    from django.core.management import call_command
    from django.db import connection, connections
    from django.utils import timezone
    from psycopg import ClientCursor

    from reports.research import copy_to, ruptures_extract
    from sessions.demo import SCALES, build_demo_clinic
    from supervision.measures import Period

    connections.close_all()
    recreate(base_url, name)
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    counts = build_demo_clinic(SCALES[scale_name], now=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    built = time.perf_counter() - started
    today = timezone.localdate()
    period = Period(today - timedelta(days=400), today)
    extract = ruptures_extract(period, salt="bench")
    connection.ensure_connection()
    statement = ClientCursor(connection.connection).mogrify(extract.sql, extract.params)

    def bare():
        n = 0
        with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY ({statement}) TO STDOUT WITH (FORMAT csv, HEADER)"
        ) as copy:
            for chunk in copy:
                n += len(chunk)
        return n

    def ours():
        with tempfile.TemporaryFile() as f:
            return copy_to(ruptures_extract(period), f.write)

    size = bare()
    ours()  # warm up
    base_best, base_median = best_of(bare)
    our_best, our_median = best_of(ours)
    print(f"\n== {scale_name} clinic: {counts['clients']} clients, {counts['sessions']} sessions, "
          f"{counts['ruptures']} ruptures; built in {built:.1f}s; extract {size / 1e6:.1f} MB")
    print(f"bare COPY of the SELECT  {base_best * 1000:8.1f} ms  (median {base_median * 1000:7.1f})")
    print(f"export_research          {our_best * 1000:8.1f} ms  (median {our_median * 1000:7.1f})  "
          f"{our_best / base_best:5.2f}x baseline")
    print(f"best and median of {REPEATS} runs each")


if __name__ == "__main__":
    main(sys.argv[1:] or ["small"])
