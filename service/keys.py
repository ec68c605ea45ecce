"""API keys: random tokens shown once, stored only as sha256 hashes, each with a role, an optional expiry and the
time it was last used.

Keys carry 256 bits of entropy, so a fast hash is enough: nothing is gained by a slow KDF against guessing, and a
lookup per request stays cheap. A key is found by its hash, so the time a lookup takes depends on the hash, never
on how much of a guessed key was right.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from service.sqlite_conn import ThreadLocalSQLite

Role = Literal["read", "admin"]
ROLES: tuple[Role, ...] = ("read", "admin")
KEY_PREFIX = "dpk_"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('read', 'admin')),
    key_sha256 TEXT UNIQUE NOT NULL,
    created TEXT NOT NULL,
    revoked TEXT
);
"""
# Columns added after the first release; added in place to an older keys file.
_ADDED_COLUMNS = {"expires": "TEXT", "last_used": "TEXT"}


def hash_key(key: str) -> str:
    """Hex sha256 of a key."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def generate_key() -> str:
    """A new random key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class KeyInfo:
    """A key's public facts (never its value or hash)."""

    key_id: str
    name: str
    role: Role
    created: str
    revoked: str | None
    expires: str | None = None
    last_used: str | None = None

    def expired(self, at: datetime | None = None) -> bool:
        """The key's expiry has passed."""
        return self.expires is not None and datetime.fromisoformat(self.expires) <= (at or _now())


class KeyStore:
    """API keys in their own SQLite file, shared by the service and `dprime keys`.

    ``last_used`` is written at most once per ``touch_interval_s`` per key: a write per request would cost more
    than the request's own database work, and the time is kept to see which keys are still in use.
    """

    def __init__(self, path: Path, touch_interval_s: float = 60.0) -> None:
        self.path = Path(path)
        self._db = ThreadLocalSQLite(self.path)
        conn = self._conn()
        conn.executescript(_SCHEMA)
        have = {r[1] for r in conn.execute("PRAGMA table_info(api_keys)")}
        for column, kind in _ADDED_COLUMNS.items():
            if column not in have:
                conn.execute(f"ALTER TABLE api_keys ADD COLUMN {column} {kind}")
        self._touch_interval_s = touch_interval_s
        self._touched: dict[str, float] = {}
        self._touch_lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        return self._db.get()

    def create(self, name: str, role: Role, expires: datetime | None = None) -> tuple[KeyInfo, str]:
        """Create a key (optionally expiring); returns its info and the plaintext, which is never stored."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        if expires is not None and expires.tzinfo is None:
            raise ValueError(f"expiry {expires.isoformat()} has no time zone; give one, e.g. +00:00")
        key = generate_key()
        info = KeyInfo(
            key_id=uuid.uuid4().hex[:12],
            name=name,
            role=role,
            created=_now().isoformat(),
            revoked=None,
            expires=expires.astimezone(UTC).isoformat() if expires else None,
        )
        self._conn().execute(
            "INSERT INTO api_keys (id, name, role, key_sha256, created, expires) VALUES (?, ?, ?, ?, ?, ?)",
            (info.key_id, name, role, hash_key(key), info.created, info.expires),
        )
        return info, key

    def revoke(self, key_id: str) -> bool:
        """Revoke a key by id; False when no active key has that id."""
        cur = self._conn().execute(
            "UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL", (_now().isoformat(), key_id)
        )
        return cur.rowcount > 0

    def list(self) -> list[KeyInfo]:
        """Every key, newest first."""
        rows = (
            self._conn()
            .execute("SELECT id, name, role, created, revoked, expires, last_used FROM api_keys ORDER BY created DESC")
            .fetchall()
        )
        return [KeyInfo(*r) for r in rows]

    def lookup(self, key: str) -> KeyInfo | None:
        """The live key matching a presented one (None if unknown, revoked or expired); records its use."""
        row = (
            self._conn()
            .execute(
                "SELECT id, name, role, created, revoked, expires, last_used FROM api_keys "
                "WHERE key_sha256 = ? AND revoked IS NULL",
                (hash_key(key),),
            )
            .fetchone()
        )
        if row is None:
            return None
        info = KeyInfo(*row)
        if info.expired():
            return None
        self._touch(info.key_id)
        return info

    def role_of(self, key: str) -> Role | None:
        """The role of a presented key, or None if it is unknown, revoked or expired."""
        info = self.lookup(key)
        return info.role if info else None

    def _touch(self, key_id: str) -> None:
        now = time.monotonic()
        with self._touch_lock:
            last = self._touched.get(key_id)
            if last is not None and now - last < self._touch_interval_s:
                return
            self._touched[key_id] = now
        self._conn().execute("UPDATE api_keys SET last_used = ? WHERE id = ?", (_now().isoformat(), key_id))

    def close(self) -> None:
        """Close this thread's connection."""
        self._db.close()
