"""Load /supervision/ against a bare page, by hand: ``uv run python bench/bench_dashboard.py``.

Not a test: timings depend on the machine. What it does, every step bounded in time:

1. creates a scratch database beside DATABASE_URL's (dropped at the end unless --keep),
   migrates it and builds the large demo clinic (20 supervisors, 200 therapists,
   5,000 clients, 20 weeks of weekly sessions);
2. serves it with gunicorn on 127.0.0.1 (sync workers, --workers of them) under
   bench/bench_settings.py, whose URLconf adds the baseline page and nothing else;
3. signs in a supervisor of 10 therapists (a session written straight to the database);
4. loads each target in turn on loopback for --seconds after a short warm-up, with wrk
   when it is installed (``apt-get install -y wrk``), else a small threaded Python loop:
   the baseline, a login-required page rendering 50 rows from one query in the app's
   base template, then /supervision/ with its default filters (the last 12 weeks);
5. prints requests/s and p95 latency of both and their ratios (the aim: at least 0.7).

The dashboard keeps its figures for SUPERVISION_CACHE_SECONDS (60 by default), so under
load it mostly renders cached figures; run with SUPERVISION_CACHE_SECONDS=0 in the
environment to load the live computation on every request.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# A supervisor of 10 therapists in the large clinic (20 supervisors, 200 therapists);
# the small one is for trying the script out.
SUPERVISORS = {"large": "supervisor001", "small": "mokafor"}
TARGETS = (("baseline (50 rows, 1 query)", "/bench/baseline/"), ("/supervision/", "/supervision/"))
AIM = 0.7

WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) not_ok = 0 end
function response(status, headers, body) if status ~= 200 then not_ok = not_ok + 1 end end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("not_ok") end
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(95), bad, errors))
end
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="load per target (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up per target (default 2)")
    parser.add_argument("--connections", type=int, default=4, help="concurrent connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--scale", choices=sorted(SUPERVISORS), default="large")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--reuse", action="store_true",
                        help="load a scratch database kept by --keep instead of building it again")
    parser.add_argument("--python-load", action="store_true", help="use the Python loop, not wrk")
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        sys.exit("Set DATABASE_URL to a PostgreSQL server; the scratch database goes beside it.")
    scratch_url = _scratch_url(database_url)
    env = {
        **os.environ,
        "DATABASE_URL": scratch_url,
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or "bench-only-key-" + "x" * 40,
        "DJANGO_DEBUG": "0",
        "DJANGO_SSL_REDIRECT": "0",
        "DJANGO_SECURE_COOKIES": "0",
        "DJANGO_MANIFEST_STATIC": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    }
    os.environ.update(env)

    if not args.reuse:
        _recreate(database_url, scratch_url)
    server = None
    try:
        cookie, supervisees = _build(args.scale, reuse=args.reuse)
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application",
             "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers), "--no-control-socket",
             "--chdir", str(ROOT), "--log-level", "warning"],
            env=env, cwd=ROOT,
        )
        _wait_until_up(port, cookie, timeout=60)
        _check_pages(port, cookie, supervisees, SUPERVISORS[args.scale])
        use_wrk = shutil.which("wrk") and not args.python_load
        tool = "wrk" if use_wrk else "python threads"
        results = {}
        for name, path in TARGETS:
            load = _wrk if use_wrk else _python_load
            load(port, path, cookie, args.warmup, args.connections)  # warm-up, not counted
            results[name] = load(port, path, cookie, args.seconds, args.connections)
        _report(results, tool, args, supervisees)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        if not args.keep:
            _drop(database_url, scratch_url)


def _scratch_url(database_url):
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/") or "postgres"
    return urlunsplit(parts._replace(path=f"/{name}_bench_dashboard"))


def _admin_connection(database_url):
    import psycopg

    return psycopg.connect(database_url, autocommit=True, connect_timeout=10)


def _recreate(database_url, scratch_url):
    name = urlsplit(scratch_url).path.lstrip("/")
    with _admin_connection(database_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _drop(database_url, scratch_url):
    from django.db import connections

    connections.close_all()
    name = urlsplit(scratch_url).path.lstrip("/")
    with _admin_connection(database_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _build(scale, *, reuse):
    """Migrate, build the demo clinic, and sign the supervisor in: (cookie, supervisees)."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.db import connection
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts import mfa
    from accounts.middleware import SIGNED_IN_AT
    from accounts.models import User, supervisee_ids
    from sessions.demo import SCALES, build_demo_clinic

    if not reuse:
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        counts = build_demo_clinic(SCALES[scale])
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        took = time.perf_counter() - started
        summary = ", ".join(f"{n} {what}" for what, n in counts.items())
        print(f"Demo clinic ({scale}) built in {took:.0f}s: {summary}")

    supervisor = User.objects.get(username=SUPERVISORS[scale])
    supervisees = User.objects.filter(pk__in=supervisee_ids(supervisor)).count()
    session = SessionStore()
    session[SESSION_KEY] = str(supervisor.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = supervisor.get_session_auth_hash()
    # Signed in as a supervisor really is: with a verified second factor, and within the
    # 12-hour limit, so each request pays what a real one does (the device lookup).
    device, _ = TOTPDevice.objects.get_or_create(user=supervisor, name="bench", defaults={"confirmed": True})
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[mfa.ENROLLED] = True
    session[SIGNED_IN_AT] = time.time()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}", supervisees


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port, path, cookie, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Cookie": cookie})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _wait_until_up(port, cookie, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, _ = _get(port, "/bench/baseline/", cookie, timeout=5)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("gunicorn did not answer in time")


def _check_pages(port, cookie, supervisees, supervisor):
    """Both targets answer 200 with what they are meant to render, before any timing."""
    status, body = _get(port, "/bench/baseline/", cookie)
    rows = body.count("<tr><td>")
    if status != 200 or rows != 50:
        raise SystemExit(f"baseline answered {status} with {rows} rows")
    status, body = _get(port, "/supervision/", cookie)
    charts = len(re.findall(r'<svg class="trend"', body))
    if status != 200 or charts != supervisees + 1:
        raise SystemExit(f"/supervision/ answered {status} with {charts} charts")
    baseline_size = len(_get(port, "/bench/baseline/", cookie)[1])
    print(f"Signed in as {supervisor}, supervisor of {supervisees} therapists; /supervision/ "
          f"is {len(body) // 1024} KiB, the baseline {baseline_size // 1024} KiB.")


def _wrk(port, path, cookie, seconds, connections):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        threads = min(2, connections)
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
             "-s", script.name, "-H", f"Cookie: {cookie}", f"http://127.0.0.1:{port}{path}"],
            capture_output=True, text=True, timeout=seconds + 30, check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    requests, duration_us, p95_us, not_ok, errors = (int(x) for x in line.split()[1:])
    return {"requests": requests, "rps": requests / (duration_us / 1e6), "p95_ms": p95_us / 1000,
            "not_200": not_ok, "socket_errors": errors}


def _python_load(port, path, cookie, seconds, connections):
    """The fallback load generator: one keep-alive connection per thread, for `seconds`."""
    deadline = time.monotonic() + seconds
    latencies, not_ok, errors = [], [0], [0]
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Cookie": cookie})
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            mine.append(time.perf_counter() - started)
            if response.status != 200:
                with lock:
                    not_ok[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 30)
    elapsed = time.monotonic() - started
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "p95_ms": p95 * 1000,
            "not_200": not_ok[0], "socket_errors": errors[0]}


def _report(results, tool, args, supervisees):
    (base_name, base), (dash_name, dash) = results.items()
    print(f"\n{tool}, {args.connections} connections, {args.seconds}s per target, "
          f"gunicorn with {args.workers} sync workers on 127.0.0.1")
    print(f"{'target':<30}{'requests/s':>12}{'p95 ms':>10}{'requests':>10}{'not 200':>9}")
    for name, r in results.items():
        print(f"{name:<30}{r['rps']:>12.1f}{r['p95_ms']:>10.1f}{r['requests']:>10}"
              f"{r['not_200']:>9}")
    throughput = dash["rps"] / base["rps"]
    latency = base["p95_ms"] / dash["p95_ms"]
    print(f"\nratio, dashboard / baseline requests/s: {throughput:.2f} (aim >= {AIM})")
    print(f"ratio, baseline / dashboard p95 latency: {latency:.2f} (aim >= {AIM})")
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_dashboard.json").write_text(json.dumps({
        "tool": tool, "connections": args.connections, "seconds": args.seconds,
        "workers": args.workers, "supervisees": supervisees, "results": results,
        "throughput_ratio": throughput, "latency_ratio": latency,
    }, indent=2))


if __name__ == "__main__":
    main()
