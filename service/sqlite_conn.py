"""One SQLite connection per thread (sqlite3 connections must not be shared across threads while in use), and
SQLite's online backup."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

logger = logging.getLogger(__name__)

# A TRUNCATE checkpoint needs a moment without readers; a few tries ride out concurrent searches.
_CHECKPOINT_TRIES = 50
_CHECKPOINT_PAUSE_S = 0.02


class ThreadLocalSQLite:
    """Opens ``path`` once per thread in autocommit mode with WAL, the given extra pragmas and SQL functions."""

    def __init__(
        self, path: Path, pragmas: tuple[str, ...] = (), functions: Mapping[str, Callable[[str], str]] | None = None
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pragmas = ("journal_mode=WAL", *pragmas)
        self._functions = dict(functions or {})
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            for pragma in self._pragmas:
                conn.execute(f"PRAGMA {pragma}")
            for name, fn in self._functions.items():
                conn.create_function(name, 1, fn, deterministic=True)
            self._local.conn = conn
        return conn

    def checkpoint_truncate(self) -> bool:
        """Copy the WAL into the database and truncate it to zero bytes; False if readers kept it busy."""
        conn = self.get()
        for _ in range(_CHECKPOINT_TRIES):
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy == 0:
                return True
            time.sleep(_CHECKPOINT_PAUSE_S)
        logger.warning("could not truncate the WAL of %s: readers stayed busy; retried at the next delete", self.path)
        return False

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def online_backup(source: Path, dest: Path) -> None:
    """A consistent copy of a live SQLite database (the backup API reads one snapshot while writers go on).

    Written beside ``dest`` and renamed into place, so ``dest`` is either absent or complete.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=30.0)
    try:
        out = sqlite3.connect(tmp)
        try:
            src.backup(out)  # pages=-1: every page in one step, so the copy is one snapshot
            out.execute("PRAGMA journal_mode=DELETE")  # a backup is one self-contained file
        finally:
            out.close()
    finally:
        src.close()
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dest)


def integrity_ok(path: Path) -> bool:
    """SQLite's own integrity check of a database file."""
    conn = sqlite3.connect(path)
    try:
        return bool(conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok")
    finally:
        conn.close()
