"""One psycopg connection pool per process over the PostgreSQL gallery, its vector type registered."""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool

from service.gallery_url import GalleryLocation

logger = logging.getLogger(__name__)


def _configure(conn: psycopg.Connection) -> None:
    register_vector(conn)


def open_pool(location: GalleryLocation, max_size: int, timeout_s: float) -> ConnectionPool:
    """A started pool; raises a clear error when the database cannot be reached within timeout_s."""
    pool = ConnectionPool(
        location.dsn,
        min_size=1,
        max_size=max_size,
        timeout=timeout_s,
        configure=_configure,
        open=False,
        name="dprime-gallery",
    )
    try:
        pool.open(wait=True, timeout=timeout_s)
    except Exception as exc:
        pool.close()
        raise ConnectionError(f"cannot reach the gallery database {location.redacted()}: {exc}") from exc
    return pool


def try_advisory_lock(pool: ConnectionPool, name: str) -> Callable[[], None] | None:
    """Take a database-wide lock named ``name`` without waiting; returns its release, or None when another process
    holds it. The lock is held by a connection kept out of the pool until release (PostgreSQL drops it if this
    process dies, so a crashed leader never blocks the next one)."""
    conn = pool.getconn()
    try:
        row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (name,)).fetchone()
        conn.commit()
    except BaseException:
        pool.putconn(conn)
        raise
    if not (row and row[0]):
        pool.putconn(conn)
        return None

    def release() -> None:
        try:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))
            conn.commit()
        finally:
            pool.putconn(conn)

    return release
