"""A real PostgreSQL 16 with pgvector for the tests, from the PyPI package pgserver (no docker, no system server).

pgserver runs initdb and postgres from binaries inside the package, in a temporary folder, listening on a Unix
socket only. PostgreSQL refuses to run as root: when the tests run as root (CI does), pgserver creates a system
user ``pgserver`` with useradd, hands it the data folder, and opens read/traverse permission on the folder's
parents. The folder is made directly under the system temp dir so that only the temp dir itself is touched.
When the server cannot start (no useradd, no permission, a foreign platform), the tests that need it skip and
say why.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class PgTestServer:
    """One running server; each test gets its own fresh database on it."""

    def __init__(self, server: Any, pgdata: Path) -> None:
        self.server = server
        self.pgdata = pgdata

    def uri(self, database: str = "postgres") -> str:
        """A libpq URI of one database (the socket folder is in the query string)."""
        return str(self.server.get_uri(database))

    @contextmanager
    def database(self) -> Iterator[str]:
        """A new empty database for the block, dropped after it; yields its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.uri(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield self.uri(name)
        finally:
            with psycopg.connect(self.uri(), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def pg_test_server() -> Iterator[PgTestServer | str]:
    """A started server, or the reason it could not start (as a string, for pytest.skip)."""
    try:
        import pgserver
    except ImportError as exc:
        yield f"pgserver is not installed ({exc}); it comes with the dev extra"
        return
    pgdata = Path(tempfile.mkdtemp(prefix="dprime-pg-"))
    try:
        server = pgserver.get_server(pgdata, cleanup_mode="delete")
    except Exception as exc:  # noqa: BLE001 - any failure to start is a reason to skip, reported as such
        shutil.rmtree(pgdata, ignore_errors=True)
        yield f"could not start PostgreSQL from pgserver in {pgdata}: {type(exc).__name__}: {exc}"
        return
    try:
        yield PgTestServer(server, pgdata)
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


def both_backends() -> Any:
    """Marks a test module or test to run once over SQLite and once over PostgreSQL (the gallery_url fixture)."""
    import pytest

    return pytest.mark.parametrize("gallery_url", ["sqlite", "postgresql"], indirect=True)
