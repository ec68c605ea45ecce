"""API keys in the PostgreSQL gallery database: every replica sees a new or revoked key at its next request."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from psycopg_pool import ConnectionPool

from service.keys import KEY_COLUMNS, KeyInfo, Role, TouchThrottle, collections_json, hash_key, key_info, new_key


class PgKeyStore:
    """The KeyStore's interface over the shared database (no cache: a revocation holds at once on every replica)."""

    def __init__(self, pool: ConnectionPool, touch_interval_s: float) -> None:
        self.pool = pool
        self._throttle = TouchThrottle(touch_interval_s)

    def create(
        self, name: str, role: Role, expires: datetime | None = None, collections: Sequence[str] | None = None
    ) -> tuple[KeyInfo, str]:
        """Create a key; returns its info and the plaintext, which is never stored."""
        info, key = new_key(name, role, expires, collections)
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO api_keys (id, name, role, key_sha256, created, expires, collections) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (info.key_id, name, role, hash_key(key), info.created, info.expires, collections_json(info)),
            )
        return info, key

    def revoke(self, key_id: str) -> bool:
        """Revoke a key by id; False when no active key has that id."""
        with self.pool.connection() as conn:
            cur = conn.execute(
                "UPDATE api_keys SET revoked = %s WHERE id = %s AND revoked IS NULL",
                (datetime.now(UTC).isoformat(), key_id),
            )
            return cur.rowcount > 0

    def list(self) -> list[KeyInfo]:
        """Every key, newest first."""
        with self.pool.connection() as conn:
            rows = conn.execute(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created DESC").fetchall()
        return [key_info(r) for r in rows]

    def lookup(self, key: str) -> KeyInfo | None:
        """The live key matching a presented one (None if unknown, revoked or expired); records its use."""
        with self.pool.connection() as conn:
            row = conn.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_sha256 = %s AND revoked IS NULL", (hash_key(key),)
            ).fetchone()
            if row is None:
                return None
            info = key_info(row)
            if info.expired():
                return None
            if self._throttle.due(info.key_id):
                conn.execute(
                    "UPDATE api_keys SET last_used = %s WHERE id = %s", (datetime.now(UTC).isoformat(), info.key_id)
                )
        return info

    def role_of(self, key: str) -> Role | None:
        """The role of a presented key, or None if it is unknown, revoked or expired."""
        info = self.lookup(key)
        return info.role if info else None

    def close(self) -> None:
        """Nothing per store: the pool is closed by its owner."""
