"""The queries behind each benchmarked page, and their plans: ``python bench/plans.py``.

Run with DATABASE_URL pointing at a demo clinic (bench/bench_pages.py does, once per
size). Each page of bench/pages.py is requested in-process as its user, every query it
runs is captured, and each SELECT is EXPLAINed (ANALYZE with --analyze). Prints, per
page, the number of queries, their time, and every sequential scan of a table that grows
with the clinic (WATCHED: sessions, ruptures, repair attempts, clients, alliance checks,
flags, supervision notes); with --analyze also the shared buffers (8 kB pages of tables
and indexes) its queries read and the rows they find in those tables, the
page's work in the database without the timing noise: on a clinic four times larger the
rows should stay the same (the buffers grow a little, as a larger index is one level
deeper). With --json, one JSON object instead.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The tables whose sequential scan would make a page's cost grow with the clinic.
WATCHED = (
    "therapy_sessions_therapysession", "ruptures_ruptureevent", "ruptures_repairattempt",
    # Not named by the issue, but they grow with the clinic too.
    "therapy_sessions_client", "checks_alliancecheck", "reminders_flag", "supervision_supervisionnote",
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--analyze", action="store_true", help="EXPLAIN ANALYZE (runs the queries)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print every query and its plan")
    parser.add_argument("--page", help="only the pages whose name contains this")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.bench_settings")
    import django

    django.setup()
    report = explain_pages(analyze=args.analyze, verbose=args.verbose, only=args.page)
    if args.json:
        print(json.dumps(report))
        return
    for page in report:
        scans = ", ".join(page["seq_scans"]) or "none"
        buffers = f" {page['buffers']:>6} buffers, {page['rows']:>6} rows;" if args.analyze else ""
        print(f"{page['name']:<24} {page['status']} {page['queries']:>3} queries "
              f"{page['sql_ms']:>8.1f} ms SQL;{buffers} seq scans of watched tables: {scans}")


def explain_pages(*, analyze=False, verbose=False, only=None):
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    from bench.pages import SUPERVISOR, THERAPIST, pick_targets, sign_in

    cookies = {"therapist": sign_in(THERAPIST), "supervisor": sign_in(SUPERVISOR)}
    report = []
    for target in pick_targets():
        if only and only not in target.name:
            continue
        client = Client(HTTP_HOST="127.0.0.1")
        name, _, value = cookies[target.who].partition("=")
        client.cookies[name] = value
        headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in target.headers.items()}
        with override_settings(**({"SUPERVISION_CACHE_SECONDS": 0} if target.live else {})):
            # The second request is the one measured: the first of a session stamps it.
            client.get(target.path, secure=True, **headers)
            with CaptureQueriesContext(connection) as captured:
                response = client.get(target.path, secure=True, **headers)
        scans, sql_ms, buffers, rows = [], 0.0, 0, 0
        for query in captured.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().lstrip("(").upper().startswith(("SELECT", "WITH")):
                continue
            plan, ms = _explain(connection, sql, analyze)
            sql_ms += ms if analyze else float(query["time"]) * 1000
            buffers += plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
            rows += sum(_rows_read(plan))
            found = sorted(set(_seq_scans(plan)))
            scans += [t for t in found if t in WATCHED]
            if verbose:
                print(f"--- {target.name}, {ms:.1f} ms: {sql[:600]}\n{_outline(plan)}")
        report.append({
            "name": target.name, "path": target.path, "status": response.status_code,
            "queries": len(captured.captured_queries), "sql_ms": sql_ms,
            "seq_scans": sorted(set(scans)), "buffers": buffers, "rows": rows,
        })
    return report


def _explain(connection, sql, analyze):
    options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN ({options}) {sql}".replace("%", "%%"))
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    top = plan[0]
    ms = top.get("Execution Time", (time.perf_counter() - started) * 1000)
    return top["Plan"], ms


def _outline(node, depth=0):
    """A plan as indented lines: node, relation or index, actual time and rows if analysed."""
    what = node.get("Relation Name") or node.get("Index Name") or ""
    actual = (f" {node['Actual Total Time']:.2f} ms x{node.get('Actual Loops', 1)} rows={node['Actual Rows']}"
              f" buffers={node.get('Shared Hit Blocks', 0) + node.get('Shared Read Blocks', 0)}"
              if "Actual Total Time" in node else f" rows~{node.get('Plan Rows')}")
    lines = ["  " * depth + f"{node.get('Node Type')} {what}{actual}"]
    for child in node.get("Plans", ()):
        lines.append(_outline(child, depth + 1))
    return "\n".join(lines)


def _rows_read(node):
    """Rows each scan of a watched table found, filtered-out ones too, over all its loops
    (EXPLAIN gives them per loop): the page's work that could grow with the clinic."""
    if node.get("Relation Name") in WATCHED and "Actual Rows" in node:
        found = (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
                 + node.get("Rows Removed by Index Recheck", 0))
        yield round(found * node.get("Actual Loops", 1))
    for child in node.get("Plans", ()):
        yield from _rows_read(child)


def _seq_scans(node):
    if node.get("Node Type") == "Seq Scan":
        yield node.get("Relation Name", "?")
    for child in node.get("Plans", ()):
        yield from _seq_scans(child)


if __name__ == "__main__":
    main()
