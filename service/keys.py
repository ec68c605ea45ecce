"""API keys: random tokens shown once, stored only as sha256 hashes, each with a role, an optional expiry and the
time it was last used.

Keys carry 256 bits of entropy, so a fast hash is enough: nothing is gained by a slow KDF against guessing, and a
lookup per request stays cheap. A key is found by its hash, so the time a lookup takes depends on the hash, never
on how much of a guessed key was right.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

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
_ADDED_COLUMNS = {"expires": "TEXT", "last_used": "TEXT", "collections": "TEXT"}
KEY_COLUMNS = "id, name, role, created, revoked, expires, last_used, collections"


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
    collections: tuple[str, ...] | None = None  # None: every collection

    def expired(self, at: datetime | None = None) -> bool:
        """The key's expiry has passed."""
        return self.expires is not None and datetime.fromisoformat(self.expires) <= (at or _now())


def key_info(row: tuple[Any, ...]) -> KeyInfo:
    """A KeyInfo from a row of the columns in KEY_COLUMNS (collections stored as a JSON list, or NULL)."""
    key_id, name, role, created, revoked, expires, last_used, collections = row
    return KeyInfo(
        key_id=key_id,
        name=name,
        role=role,
        created=created,
        revoked=revoked,
        expires=expires,
        last_used=last_used,
        collections=None if collections is None else tuple(json.loads(collections)),
    )


def new_key(name: str, role: Role, expires: datetime | None, collections: Sequence[str] | None) -> tuple[KeyInfo, str]:
    """A fresh key and its facts, checked (the caller stores the info with hash_key of the plaintext)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if expires is not None and expires.tzinfo is None:
        raise ValueError(f"expiry {expires.isoformat()} has no time zone; give one, e.g. +00:00")
    info = KeyInfo(
        key_id=uuid.uuid4().hex[:12],
        name=name,
        role=role,
        created=_now().isoformat(),
        revoked=None,
        expires=expires.astimezone(UTC).isoformat() if expires else None,
        collections=None if collections is None else tuple(sorted(set(collections))),
    )
    return info, generate_key()


def collections_json(info: KeyInfo) -> str | None:
    """How a key's collections are stored."""
    return None if info.collections is None else json.dumps(list(info.collections))


class TouchThrottle:
    """Says when a key's last-used time is due to be written again (at most once per interval per key)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def due(self, key_id: str) -> bool:
        """True (and remembered) when key_id was not touched within the interval."""
        now = time.monotonic()
        with self._lock:
            last = self._touched.get(key_id)
            if last is not None and now - last < self.interval_s:
                return False
            self._touched[key_id] = now
        return True


class KeyStore:
    """API keys in their own SQLite file, shared by the service and `dprime keys`.

    ``last_used`` is written at most once per ``touch_interval_s`` per key: a write per request would cost more
    than the request's own database work, and the time is kept to see which keys are still in use.
    """

    def __init__(self, path: Path, touch_interval_s: float) -> None:
        self.path = Path(path)
        self._db = ThreadLocalSQLite(self.path)
        conn = self._conn()
        conn.executescript(_SCHEMA)
        have = {r[1] for r in conn.execute("PRAGMA table_info(api_keys)")}
        for column, kind in _ADDED_COLUMNS.items():
            if column not in have:
                conn.execute(f"ALTER TABLE api_keys ADD COLUMN {column} {kind}")
        self._throttle = TouchThrottle(touch_interval_s)

    def _conn(self) -> sqlite3.Connection:
        return self._db.get()

    def create(
        self, name: str, role: Role, expires: datetime | None = None, collections: Sequence[str] | None = None
    ) -> tuple[KeyInfo, str]:
        """Create a key (optionally expiring, optionally limited to some collections); returns its info and the
        plaintext, which is never stored."""
        info, key = new_key(name, role, expires, collections)
        self._conn().execute(
            "INSERT INTO api_keys (id, name, role, key_sha256, created, expires, collections) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (info.key_id, name, role, hash_key(key), info.created, info.expires, collections_json(info)),
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
        rows = self._conn().execute(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created DESC").fetchall()
        return [key_info(r) for r in rows]

    def lookup(self, key: str) -> KeyInfo | None:
        """The live key matching a presented one (None if unknown, revoked or expired); records its use."""
        row = (
            self._conn()
            .execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_sha256 = ? AND revoked IS NULL",
                (hash_key(key),),
            )
            .fetchone()
        )
        if row is None:
            return None
        info = key_info(row)
        if info.expired():
            return None
        self._touch(info.key_id)
        return info

    def role_of(self, key: str) -> Role | None:
        """The role of a presented key, or None if it is unknown, revoked or expired."""
        info = self.lookup(key)
        return info.role if info else None

    def _touch(self, key_id: str) -> None:
        if not self._throttle.due(key_id):
            return
        self._conn().execute("UPDATE api_keys SET last_used = ? WHERE id = ?", (_now().isoformat(), key_id))

    def close(self) -> None:
        """Close this thread's connection."""
        self._db.close()
