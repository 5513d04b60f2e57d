"""Where each benchmarked page's time goes, in-process: ``python bench/breakdown.py``.

Run with DATABASE_URL pointing at a demo clinic, as bench/plans.py is. Each page of
bench/pages.py (the "live" dashboard with its cache off) is requested through Django's
test client as its user, --requests times after a warm-up, and its time per request is
split three ways:

- SQL: every query's execute, as the app runs it (binding, planning, running, the rows
  coming back), wherever it was run from, the templates included;
- drawing: the templates' rendering, less the SQL run from inside it;
- the rest: Python outside the templates (building and compiling the ORM's queries,
  making model instances of their rows, the view's own work, the middleware).

Beside them, an empty login-required page (bench_urls.empty: the middleware and nothing
else) and the bare page, twice whose time is the most a page may take at half the bare
page's throughput. It shows which part would have to shrink, which the benchmark's
ratios do not. Not a test: timings depend on the machine, and no server or TLS is in
the way.
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_pages import serving_env  # noqa: E402 (needs ROOT on the path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="timed requests per page (default 40)")
    parser.add_argument("--page", help="only the pages whose name contains this")
    args = parser.parse_args()
    # As the benchmark serves the pages: debug off (no query log), the bench's URLconf.
    os.environ.update(serving_env(os.environ["DATABASE_URL"]))
    import django

    django.setup()
    from bench.pages import EMPTY, SUPERVISOR, THERAPIST, Target, pick_targets

    empty, bare, *pages = [Target("empty page (middleware)", EMPTY, "therapist"), *pick_targets()]
    chosen = [empty, bare, *(page for page in pages if not args.page or args.page in page.name)]
    users = {"therapist": THERAPIST, "supervisor": SUPERVISOR}
    rows = [(target.name, split(target, args.requests, users)) for target in chosen]
    print(f"{'page':<28} {'ms/request':>10} {'SQL':>6} {'drawing':>8} {'the rest':>9}")
    for name, (total, sql, drawing) in rows:
        print(f"{name:<28} {total:>10.1f} {sql:>6.1f} {drawing:>8.1f} {total - sql - drawing:>9.1f}")


def split(target, requests, usernames):
    """(time per request, its SQL, its drawing) in ms, for `target` as its user."""
    from django.db import connection
    from django.template.backends import django as backend
    from django.test import Client, override_settings

    from bench.pages import sign_in

    client = Client(HTTP_HOST="127.0.0.1", secure=True, HTTP_X_FORWARDED_PROTO="https",
                    HTTP_X_FORWARDED_FOR="127.0.0.1")
    name, value = sign_in(usernames[target.who]).split("=", 1)
    client.cookies[name] = value
    headers = {"HTTP_" + key.upper().replace("-", "_"): text for key, text in target.headers.items()}
    spent = {"sql": 0.0, "sql_drawing": 0.0, "drawing": 0.0}
    drawing = [False]

    def timed_execute(execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            took = time.perf_counter() - start
            spent["sql"] += took
            if drawing[0]:
                spent["sql_drawing"] += took

    render = backend.Template.render

    def timed_render(template, *args, **kwargs):
        # A template drawn while another is (a fragment rendered to a string for its
        # page) counts once, in the outer one.
        if drawing[0]:
            return render(template, *args, **kwargs)
        drawing[0], start = True, time.perf_counter()
        try:
            return render(template, *args, **kwargs)
        finally:
            drawing[0] = False
            spent["drawing"] += time.perf_counter() - start

    backend.Template.render = timed_render
    # "Live": the dashboard with its cache off, as the benchmark's second server runs it.
    cache = override_settings(SUPERVISION_CACHE_SECONDS=0) if target.live else override_settings()
    try:
        with cache, connection.execute_wrapper(timed_execute):
            for _ in range(5):
                response = client.get(target.path, **headers)
                assert response.status_code == 200, (target.name, response.status_code)
            spent.update(sql=0.0, sql_drawing=0.0, drawing=0.0)
            start = time.perf_counter()
            for _ in range(requests):
                client.get(target.path, **headers)
            total = time.perf_counter() - start
    finally:
        backend.Template.render = render
    per_request = 1000 / requests
    return (total * per_request, spent["sql"] * per_request,
            (spent["drawing"] - spent["sql_drawing"]) * per_request)


if __name__ == "__main__":
    main()
