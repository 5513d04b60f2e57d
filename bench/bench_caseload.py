"""Import and export a large caseload file by hand: ``uv run python bench/bench_caseload.py``.

Not a test: timings depend on the machine. It generates a seeded file of 100,000
sessions and 40,000 ruptures (with 5,000 clients, 200 therapists, 20 supervisors and
their repair attempts), imports it into a fresh database made for the run, exports it
back, and prints time and peak memory for each step. Each step runs in its own process,
so its peak resident memory is its own. The baselines, measured in the same run on the
same file, are what any tool pays to read and write that JSON at all: ``json.loads``
of the bytes for the import, ``json.dumps`` of the parsed document for the export.

Needs DATABASE_URL (a PostgreSQL server where it may create and drop a database named
after the configured one with ``_bench`` appended). ``--scale 0.1`` runs a tenth of it.
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SESSIONS = 100_000
RUPTURES = 40_000
WEEKS = 20  # sessions per client, so clients = sessions / WEEKS
CLIENTS_PER_THERAPIST = 25
THERAPISTS_PER_SUPERVISOR = 10
TARGET_SECONDS = 60
TARGET_MB = 500


def generate(path: Path, scale: float, seed: int = 2026) -> dict:
    from ruptures import vocabulary as v

    rng = random.Random(seed)
    n_sessions = int(SESSIONS * scale)
    n_clients = max(1, n_sessions // WEEKS)
    n_therapists = max(1, n_clients // CLIENTS_PER_THERAPIST)
    n_supervisors = max(1, n_therapists // THERAPISTS_PER_SUPERVISOR)
    withdrawal = [m for m, kind in v.MARKER_KIND.items() if kind == "withdrawal"]
    confrontation = [m for m, kind in v.MARKER_KIND.items() if kind == "confrontation"]
    signals = [s for s, _ in v.INTERNAL_SIGNALS]
    sources = [s for s, _ in v.SOURCES]
    strategies = [s for s, *_ in v.STRATEGY_TABLE]
    outcomes = ["attempted", "partially_resolved", "resolved", "unresolved"]

    users = [
        {
            "username": "admin",
            "name": "Clinic admin",
            "email": "admin@clinic.example",
            "role": "admin",
        }
    ]
    supervisors = [f"sup{i:03d}" for i in range(n_supervisors)]
    therapists = [f"ther{i:04d}" for i in range(n_therapists)]
    for s in supervisors:
        users.append(
            {
                "username": s,
                "name": f"Supervisor {s}",
                "email": f"{s}@clinic.example",
                "role": "supervisor",
            }
        )
    for i, t in enumerate(therapists):
        users.append(
            {
                "username": t,
                "name": f"Therapist {t}",
                "email": f"{t}@clinic.example",
                "role": "therapist",
                "supervisor": supervisors[i % n_supervisors],
            }
        )
    clients, sessions, by_client = [], [], []
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    for c in range(n_clients):
        code, therapist = f"C-{c:06d}", therapists[c % n_therapists]
        clients.append(
            {
                "code": code,
                "name": f"Client {c}" if c % 3 else "",
                "therapist": therapist,
                "status": rng.choice(["active"] * 8 + ["paused", "discharged"]),
                "started_on": (date(2025, 6, 1) + timedelta(days=rng.randint(0, 200))).isoformat(),
            }
        )
        slot = start + timedelta(days=rng.randint(0, 4), hours=rng.randint(0, 8))
        mine = []
        for week in range(WEEKS if c < n_clients - 1 else n_sessions - WEEKS * (n_clients - 1)):
            key = f"S-{len(sessions) + 1}"
            sessions.append(
                {
                    "id": key,
                    "client": code,
                    "therapist": therapist,
                    "starts_at": (slot + timedelta(weeks=week)).isoformat(),
                    "status": rng.choice(["held"] * 9 + ["cancelled", "no_show"]),
                }
            )
            mine.append(key)
        by_client.append(mine)
    ruptures = []
    for n in range(int(RUPTURES * scale)):
        mine = by_client[n % n_clients]
        at = rng.randrange(len(mine))
        kind = "withdrawal" if rng.random() < 0.75 else "confrontation"
        actor = "therapist" if rng.random() < 0.1 else "client"
        pool = withdrawal if kind == "withdrawal" else confrontation
        markers = (
            []
            if actor == "therapist" and rng.random() < 0.5
            else rng.sample(pool, rng.choice([1, 1, 2]))
        )
        attempts = [
            {
                "session": mine[min(len(mine) - 1, at + k)],
                "strategy": rng.choice(strategies),
                "outcome": rng.choice(outcomes),
                "note": "Talked it through." if rng.random() < 0.3 else "",
            }
            for k in range(rng.choice([0, 1, 1, 2]))
        ]
        ruptures.append(
            {
                "id": f"R-{n + 1}",
                "session": mine[at],
                "kind": kind,
                "actor": actor,
                "markers": markers,
                "intensity": rng.randint(1, 5),
                "source": rng.choice(sources),
                "internal_signals": rng.sample(signals, rng.choice([0, 1, 1, 2])),
                "minute": rng.randint(1, 50),
                "note": "Went quiet after the referral letter came up; short answers from then on.",
                "plan": "Ask at the start of next session how the letter question landed.",
                "repair_status": attempts[-1]["outcome"] if attempts else "unaddressed",
                "attempts": attempts,
            }
        )
    doc = {
        "format": "caseload",
        "version": 1,
        "users": users,
        "clients": clients,
        "sessions": sessions,
        "ruptures": ruptures,
    }
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return {
        "users": len(users),
        "clients": len(clients),
        "sessions": len(sessions),
        "ruptures": len(ruptures),
        "attempts": sum(len(r["attempts"]) for r in ruptures),
    }


# --- Steps, each run in a child process ----------------------------------------------------


def step_baseline(path):
    started = time.perf_counter()
    doc = json.loads(Path(path).read_bytes())
    loaded = time.perf_counter()
    text = json.dumps(doc, ensure_ascii=False, indent=1)
    dumped = time.perf_counter()
    return {"load_s": loaded - started, "dump_s": dumped - loaded, "bytes": len(text.encode())}


def step_import(path):
    django_setup()
    from exchange.importer import run_import

    started = time.perf_counter()
    result = run_import(Path(path).read_bytes())
    took = time.perf_counter() - started
    if result.problems:
        raise SystemExit("\n".join(map(str, result.problems[:20])))
    return {"seconds": took, "counts": result.counts_dict()}


def step_export(path):
    django_setup()
    from exchange.exporter import export_caseload

    started = time.perf_counter()
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        counts = export_caseload(f.write)
    return {"seconds": time.perf_counter() - started, "counts": counts}


def django_setup():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def run_step(name, *args):
    """Run one step in a fresh interpreter; its result plus its own peak resident memory."""
    # Production settings: with debug on, Django keeps the text of every query in memory.
    os.environ.setdefault(
        "DJANGO_SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuv"
    )
    os.environ["DJANGO_DEBUG"] = "0"
    out = subprocess.run(
        [sys.executable, __file__, "--step", name, *args],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_database_url():
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("Set DATABASE_URL to a PostgreSQL server (see the module docstring).")
    base, _, name = url.rpartition("/")
    name = name.split("?")[0]
    return url, base, f"{name}_bench"


def admin_sql(url, sql):
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--keep", action="store_true", help="Keep the bench database and files.")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.step:
        result = {"baseline": step_baseline, "import": step_import, "export": step_export}[
            options.step
        ](*options.args)
        result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    url, base, bench_name = bench_database_url()
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    source, exported = out / "caseload.json", out / "caseload-export.json"
    started = time.perf_counter()
    made = generate(source, options.scale)
    print(
        f"generated {source.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - started:.1f}s: "
        + ", ".join(f"{n} {what}" for what, n in made.items())
    )

    admin_sql(url, f'DROP DATABASE IF EXISTS "{bench_name}"')
    admin_sql(url, f'CREATE DATABASE "{bench_name}"')
    os.environ["DATABASE_URL"] = f"{base}/{bench_name}"
    try:
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], check=True, env=os.environ
        )
        baseline = run_step("baseline", str(source))
        imported = run_step("import", str(source))
        exported_step = run_step("export", str(exported))
    finally:
        if not options.keep:
            admin_sql(url, f'DROP DATABASE IF EXISTS "{bench_name}"')

    def verdict(seconds, mb):
        ok = seconds < TARGET_SECONDS and mb < TARGET_MB
        return "within" if ok else "OVER"

    print(
        f"baseline json.loads:  {baseline['load_s']:7.2f} s   peak RSS (load + dump) "
        f"{baseline['maxrss_mb']:6.0f} MB"
    )
    print(f"baseline json.dumps:  {baseline['dump_s']:7.2f} s")
    for label, step, base in [
        ("import_caseload", imported, ("load_s", "json.loads")),
        ("export_caseload", exported_step, ("dump_s", "json.dumps")),
    ]:
        seconds, mb = step["seconds"], step["maxrss_mb"]
        print(
            f"{label + ':':<21} {seconds:7.2f} s   peak RSS {mb:6.0f} MB   "
            f"{seconds / baseline[base[0]]:5.1f}x {base[1]}   "
            f"{mb / baseline['maxrss_mb']:4.1f}x its memory   "
            f"[{verdict(seconds, mb)} {TARGET_SECONDS} s / {TARGET_MB} MB]"
        )
    print(
        "imported: " + ", ".join(f"{name} {t['created']}" for name, t in imported["counts"].items())
    )
    print("exported: " + ", ".join(f"{n} {name}" for name, n in exported_step["counts"].items()))
    if not options.keep:
        source.unlink()
        exported.unlink()


if __name__ == "__main__":
    main()
