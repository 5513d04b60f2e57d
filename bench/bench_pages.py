"""Every everyday page against a bare page, at two clinic sizes: ``uv run python bench/bench_pages.py``.

Not a test: timings depend on the machine. What it does, every step bounded in time:

1. for each size, the large demo clinic (200 therapists, 5,000 clients, about 100,000
   sessions) and one four times larger (800, 20,000, about 400,000), uses a database
   beside DATABASE_URL's (``<name>_bench_large``, ``<name>_bench_xl``, or --large/--xl
   URLs), migrating it and building the clinic with ``seed_demo`` (and one reminder
   sweep) if it has none, both clinics' histories dated from one moment (that of a clinic
   already built, else the run's start), then ``VACUUM ANALYZE`` as autovacuum would
   have; the databases are kept for the next run (--drop drops them);
2. EXPLAIN ANALYZEs every query of every page on it, as the page's user (bench/plans.py),
   and prints each sequential scan of a table that grows with the clinic (sessions,
   ruptures, repair attempts, clients, checks, flags, notes: plans.WATCHED), and how
   many rows of those tables the page's queries read (the same at both sizes if its
   cost is independent of the clinic's; unlike the times, this does not drift);
3. serves it as deployed: gunicorn (sync workers) behind Caddy terminating TLS
   (Debian's ``caddy``, configured as the Caddyfile beside docker-compose.yml; a throwaway
   self-signed certificate from ``openssl``), under
   bench/bench_settings.py, whose URLconf adds the bare page; a second gunicorn with
   SUPERVISION_CACHE_SECONDS=0 serves the live dashboard;
4. loads each page with wrk (``apt-get install wrk``) over TLS on loopback for --seconds
   after a warm-up, as therapist001 (25 clients, the same caseload at both sizes) or
   supervisor001 (10 therapists), each page right after a run of the bare page, which
   its ratio is taken against (on a shared machine the load drifts between runs), and
   --repeat times over, the median ratio counting;
5. prints one table: time per request and throughput against the bare page at each
   size, and the larger clinic's time per request over the large one's, each in units
   of its own bare page, and the rows read at each size (the aims: at least 0.5 of the
   bare page's throughput, at most 1.2 times the time and the rows).
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
THROUGHPUT_AIM = 0.5
GROWTH_AIM = 1.2

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
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency.mean, latency:percentile(95), bad, errors))
end
"""

CADDYFILE = """{{
	admin off
	auto_https off
	storage file_system {tmp}/caddy
}}
{sites}
"""
SITE = """https://127.0.0.1:{port} {{
	tls {tmp}/cert.pem {tmp}/key.pem
	reverse_proxy 127.0.0.1:{upstream}
}}
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="load per run (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up per page (default 2)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each page, each after its own bare-page run; the median counts "
                             "(default 3: with two, one noisy run moved a page's growth to 1.38)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (default 3)")
    parser.add_argument("--large", help="database URL of the large clinic")
    parser.add_argument("--xl", help="database URL of the clinic four times larger")
    parser.add_argument("--sizes", default="large,xl", help="which sizes to run (default both)")
    parser.add_argument("--drop", action="store_true", help="drop the databases at the end")
    parser.add_argument("--pages", default="",
                        help="only the pages whose name contains one of these (comma-separated), "
                             "to measure one again with more --repeat")
    args = parser.parse_args()
    for tool in ("wrk", "caddy", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed: apt-get install -y wrk caddy openssl")
    database_url = os.environ.get("DATABASE_URL")
    if not database_url and not (args.large and args.xl):
        sys.exit("Set DATABASE_URL (the databases go beside it) or give --large and --xl.")
    sizes = [s for s in args.sizes.split(",") if s]
    urls = {"large": args.large or _beside(database_url, "large"), "xl": args.xl or _beside(database_url, "xl")}

    as_of = _common_instant([urls[size] for size in sizes])
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        _certificate(tmp)
        try:
            for size in sizes:
                results[size] = _run_size(size, urls[size], tmp, args, as_of)
        finally:
            if args.drop:
                for size in sizes:
                    _drop(urls[size])
    _report(results, args)


def _beside(database_url, size):
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/") or "postgres"
    return urlunsplit(parts._replace(path=f"/{name}_bench_{size}"))


def serving_env(database_url, *, live=False):
    """The environment the app is measured in: production settings (debug off) on the
    bench's URLconf, behind one proxy (bench/breakdown.py runs in it too)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or "bench-only-key-" + "x" * 40,
        "DJANGO_DEBUG": "0",
        "DJANGO_MANIFEST_STATIC": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SITE_URL": "https://127.0.0.1",
        # Caddy is the one proxy in front, as in docker-compose.yml.
        "DJANGO_TRUSTED_PROXY_COUNT": "1",
    }
    if live:
        env["SUPERVISION_CACHE_SECONDS"] = "0"
    return env


def _manage(env, *args, timeout):
    return subprocess.run([sys.executable, "manage.py", *args], env=env, cwd=ROOT, check=True,
                          capture_output=True, text=True, timeout=timeout).stdout


def _run_size(size, database_url, tmp, args, as_of):
    _create_if_missing(database_url)
    env = serving_env(database_url)
    _manage(env, "migrate", "--noinput", timeout=1800)
    started = time.perf_counter()
    built = _manage(env, "seed_demo", "--scale", size, "--as-of", as_of.isoformat(), timeout=1800).strip()
    if "already present" not in built:
        print(f"[{size}] {built} ({time.perf_counter() - started:.0f}s)")
        # Statistics first: the sweep's plans need them as much as the pages' do.
        subprocess.run(["psql", database_url, "-qc", "VACUUM ANALYZE"], check=True, timeout=1800)
        # One sweep, as the demo does, so the pages show the flags a clinic has: at the
        # moment the history is dated from, so that both clinics hold the same flags too.
        _manage({**env, "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend"},
                "flag_open_ruptures", "--now", as_of.isoformat(), timeout=1800)
    # Before every run, what autovacuum does for a deployed database: a server with it off
    # (CI machines often are) keeps the dead rows of the sweep's flag updates and of earlier
    # runs, and the pages would be measured through them (70,000 dead flags at xl here).
    subprocess.run(["psql", database_url, "-qc", "VACUUM ANALYZE"], check=True, timeout=1800)
    plans = json.loads(subprocess.run(
        [sys.executable, "bench/plans.py", "--json", "--analyze"], env=env, cwd=ROOT, check=True,
        capture_output=True, text=True, timeout=600,
    ).stdout)
    picked = json.loads(subprocess.run(
        [sys.executable, "bench/pages.py"], env=env, cwd=ROOT, check=True,
        capture_output=True, text=True, timeout=600,
    ).stdout)
    servers = []
    try:
        upstreams = {False: _free_port(), True: _free_port()}
        for live, port in upstreams.items():
            servers.append(subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
                 "--workers", str(args.workers), "--no-control-socket", "--log-level", "warning"],
                env=serving_env(database_url, live=live), cwd=ROOT,
            ))
        fronts = {live: _free_port() for live in upstreams}
        sites = "".join(SITE.format(port=fronts[live], upstream=upstreams[live], tmp=tmp) for live in upstreams)
        caddyfile = Path(tmp) / "Caddyfile"
        caddyfile.write_text(CADDYFILE.format(tmp=tmp, sites=sites))
        servers.append(subprocess.Popen(
            ["caddy", "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        base = next(t for t in picked["targets"] if t["path"] == "/bench/baseline/")
        wanted = [w for w in args.pages.split(",") if w]
        targets = [t for t in picked["targets"] if t is base or not wanted or any(w in t["name"] for w in wanted)]
        if len(targets) < 2:
            names = ", ".join(t["name"] for t in picked["targets"] if t is not base)
            sys.exit(f"--pages {args.pages!r} names none of the pages measured against the bare one: {names}")
        for target in targets:
            _check(fronts[target["live"]], target, picked["cookies"][target["who"]])
        measured = {}
        # Each page right after its own run of the bare page: on a shared machine the load
        # drifts, and a ratio of two runs minutes apart would measure the drift.
        for repeat in range(args.repeat):
            for target in (t for t in targets if t is not base):
                for run in (base, target):
                    port, cookie = fronts[run["live"]], picked["cookies"][run["who"]]
                    _wrk(port, run, cookie, args.warmup, args.connections)
                    result = _wrk(port, run, cookie, args.seconds, args.connections)
                    result["pair"] = (target["name"], repeat)
                    measured.setdefault(run["name"], []).append(result)
                    print(f"[{size}] {run['name']:<22} {result['rps']:8.1f} req/s "
                          f"{result['mean_ms']:7.1f} ms mean {result['p95_ms']:7.1f} ms p95")
    finally:
        for server in reversed(servers):
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
    return {"pages": measured, "plans": {p["name"]: p for p in plans}, "order": [t["name"] for t in targets]}


def _common_instant(database_urls):
    """The moment both clinics' histories are dated from: that of a clinic already built,
    else now. The demo dates its sessions from the moment it is built, so two clinics
    built half an hour apart hold slightly different caseloads (a 17:00 slot held in one,
    still to come in the other), and the same user's pages would read different rows."""
    import psycopg

    built = set()
    for url in database_urls:
        name, server = _server(url)
        with server as conn:
            if not _exists(conn, name):
                continue
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            if conn.execute("SELECT to_regclass('therapy_sessions_client')").fetchone()[0] is None:
                continue
            # The demo writes every client with the moment it dates the history from.
            moment = conn.execute("SELECT min(created_at) FROM therapy_sessions_client").fetchone()[0]
            if moment is not None:
                built.add(moment)
    if len(built) > 1:
        print(f"! the clinics were built from different moments ({', '.join(str(m) for m in sorted(built))}): "
              "their caseloads differ a little; --drop, then run again to build both from one")
    return min(built) if built else datetime.now(UTC)


def _server(database_url):
    """The database's name, and a connection to its server's maintenance database."""
    import psycopg

    name = urlsplit(database_url).path.lstrip("/")
    admin = urlunsplit(urlsplit(database_url)._replace(path="/postgres"))
    return name, psycopg.connect(admin, autocommit=True, connect_timeout=10)


def _exists(conn, name):
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def _create_if_missing(database_url):
    name, server = _server(database_url)
    with server as conn:
        if not _exists(conn, name):
            conn.execute(f'CREATE DATABASE "{name}"')


def _drop(database_url):
    name, server = _server(database_url)
    with server as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _certificate(tmp):
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", f"{tmp}/key.pem", "-out", f"{tmp}/cert.pem"],
        check=True, capture_output=True, timeout=30,
    )


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _curl_args(port, target, cookie):
    headers = [f"Cookie: {cookie}", *(f"{k}: {v}" for k, v in target["headers"].items())]
    return headers, f"https://127.0.0.1:{port}{target['path']}"


def _check(port, target, cookie, timeout=60):
    """The page answers 200 with what it is meant to show before anything is timed."""
    import ssl
    import urllib.request

    headers, url = _curl_args(port, target, cookie)
    request = urllib.request.Request(url, headers=dict(h.split(": ", 1) for h in headers))
    context = ssl._create_unverified_context()  # our own throwaway certificate
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(request, context=context, timeout=30) as response:
                body = response.read().decode()
                status = response.status
            break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not answer in time") from None
            time.sleep(0.5)
    if status != 200 or target["expect"] not in body:
        raise SystemExit(f"{target['name']} ({url}) answered {status} without {target['expect']!r}")


def _wrk(port, target, cookie, seconds, connections):
    headers, url = _curl_args(port, target, cookie)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s",
                   "--timeout", "10s", "-s", script.name]
        for header in headers:
            command += ["-H", header]
        out = subprocess.run([*command, url], capture_output=True, text=True,
                             timeout=seconds + 60, check=True).stdout
    finally:
        os.unlink(script.name)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    requests, duration_us, mean_us, p95_us, not_ok, errors = (int(x) for x in line.split()[1:])
    if not_ok or errors:
        print(f"  ! {target['name']}: {not_ok} answers not 200, {errors} socket errors")
    return {"requests": requests, "rps": requests / (duration_us / 1e6), "mean_ms": mean_us / 1000,
            "p95_ms": p95_us / 1000, "not_200": not_ok, "socket_errors": errors}


def _mean(runs, key):
    done = [r for r in runs if r["requests"]]  # a run whose requests all outlasted it says nothing
    return sum(r[key] for r in done) / len(done) if done else float("nan")


def _report(results, args):
    sizes = list(results)
    print(f"\nwrk, {args.connections} connections over TLS (Caddy) on loopback, {args.seconds}s a page, "
          f"gunicorn with {args.workers} sync workers; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at the end")
    header = "| page |" + "".join(f" {s}: ms/request | {s}: vs bare page |" for s in sizes)
    if len(sizes) == 2:
        header += f" {sizes[1]}/{sizes[0]} time |"
    header += "".join(f" {s}: rows read |" for s in sizes) + " queries | seq scans |"
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    rows, problems = [], []
    first = results[sizes[0]]
    for name in first["order"]:
        cells = [name]
        ratios = []
        for size in sizes:
            pages = results[size]["pages"]
            bare = pages[first["order"][0]]
            runs = pages[name]
            if name == first["order"][0]:
                ratio = 1.0
            else:
                # Each run against the bare page's run just before it; the median of them.
                paired = {tuple(b["pair"]): b["rps"] for b in bare}
                pairs = [r["rps"] / paired[tuple(r["pair"])] for r in runs if paired[tuple(r["pair"])]]
                ratio = statistics.median(pairs) if pairs else float("nan")
            ratios.append(ratio)
            cells += [f"{_mean(runs, 'mean_ms'):.1f}", f"{ratio:.2f}"]
            if name != first["order"][0] and ratio < THROUGHPUT_AIM:
                problems.append(f"{name} at {size}: {ratio:.2f} of the bare page's throughput")
        if len(sizes) == 2:
            # Time per request at the larger size over the large one's, each measured
            # in units of its own bare page, so that the machine's drift cancels out.
            growth = ratios[0] / ratios[1]
            cells.append(f"{growth:.2f}")
            if growth > GROWTH_AIM:
                problems.append(f"{name}: {growth:.2f} times the time on the larger clinic")
        # The rows each size's plans found in the tables that grow with the clinic:
        # the same user's pages should find the same rows in a clinic four times larger.
        read = [results[size]["plans"].get(name, {}).get("rows") for size in sizes]
        cells += ["" if n is None else str(n) for n in read]
        if len(sizes) == 2 and None not in read and read[1] > GROWTH_AIM * max(read[0], 1):
            problems.append(f"{name}: its queries read {read[1]} rows on the larger clinic, {read[0]} on the large one")
        plan = results[sizes[0]]["plans"].get(name, {})
        scans = sorted({s for size in sizes for s in results[size]["plans"].get(name, {}).get("seq_scans", [])})
        cells += [str(plan.get("queries", "")), ", ".join(scans) or "none"]
        if scans:
            problems.append(f"{name}: sequential scan of {', '.join(scans)}")
        rows.append("| " + " | ".join(cells) + " |")
    print("\n".join(rows))
    print("\n" + ("\n".join(f"missed: {p}" for p in problems) if problems else "every aim met"))
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_pages.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    rule = "|---" * (header.count("|") - 1) + "|"
    (out / "bench_pages.md").write_text("\n".join([header, rule, *rows]) + "\n")


if __name__ == "__main__":
    main()
