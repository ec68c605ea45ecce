"""API keys: random tokens shown once, stored only as sha256 hashes, each with a role (read or admin).

Keys carry 256 bits of entropy, so a fast hash is enough: nothing is gained by a slow KDF against
guessing, and a lookup per request stays cheap.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
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


def hash_key(key: str) -> str:
    """Hex sha256 of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_key() -> str:
    """A new random key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class KeyInfo:
    """A key's public facts (never its value or hash)."""

    key_id: str
    name: str
    role: Role
    created: str
    revoked: str | None


class KeyStore:
    """API keys in their own SQLite file, shared by the service and `dprime keys`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db = ThreadLocalSQLite(self.path)
        self._conn().executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        return self._db.get()

    def create(self, name: str, role: Role) -> tuple[KeyInfo, str]:
        """Create a key; returns its info and the plaintext, which is never stored."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        key = generate_key()
        info = KeyInfo(
            key_id=uuid.uuid4().hex[:12], name=name, role=role, created=datetime.now(UTC).isoformat(), revoked=None
        )
        self._conn().execute(
            "INSERT INTO api_keys (id, name, role, key_sha256, created) VALUES (?, ?, ?, ?, ?)",
            (info.key_id, name, role, hash_key(key), info.created),
        )
        return info, key

    def revoke(self, key_id: str) -> bool:
        """Revoke a key by id; False when no active key has that id."""
        cur = self._conn().execute(
            "UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL", (datetime.now(UTC).isoformat(), key_id)
        )
        return cur.rowcount > 0

    def list(self) -> list[KeyInfo]:
        """Every key, newest first."""
        rows = (
            self._conn()
            .execute("SELECT id, name, role, created, revoked FROM api_keys ORDER BY created DESC")
            .fetchall()
        )
        return [KeyInfo(key_id=r[0], name=r[1], role=r[2], created=r[3], revoked=r[4]) for r in rows]

    def role_of(self, key: str) -> Role | None:
        """The role of a presented key, or None if it is unknown or revoked."""
        row = (
            self._conn()
            .execute("SELECT role FROM api_keys WHERE key_sha256 = ? AND revoked IS NULL", (hash_key(key),))
            .fetchone()
        )
        if row is None:
            return None
        role: Role = row[0]
        return role

    def info_of(self, key: str) -> KeyInfo | None:
        """The public facts of a presented key, or None if it is unknown or revoked."""
        row = (
            self._conn()
            .execute(
                "SELECT id, name, role, created, revoked FROM api_keys WHERE key_sha256 = ? AND revoked IS NULL",
                (hash_key(key),),
            )
            .fetchone()
        )
        return None if row is None else KeyInfo(key_id=row[0], name=row[1], role=row[2], created=row[3], revoked=row[4])

    def close(self) -> None:
        """Close this thread's connection."""
        self._db.close()
