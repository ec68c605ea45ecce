"""One SQLite connection per thread (sqlite3 connections must not be shared across threads while in use)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping
from pathlib import Path


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

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
