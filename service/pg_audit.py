"""The audit trail in the PostgreSQL gallery database (a trigger refuses UPDATE, DELETE and TRUNCATE)."""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool

from service.audit import AuditAction, AuditEntry, entry_from_row, entry_values


class PgAuditLog:
    """The AuditLog's interface over the shared database: one trail for every replica."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def record(
        self,
        key_name: str,
        action: AuditAction,
        target: str | None,
        request_id: str | None,
        outcome: str = "ok",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Append one entry."""
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO audit (time, key_name, action, target, request_id, outcome, details) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                entry_values(key_name, action, target, request_id, outcome, details),
            )

    def entries(self, limit: int, after_seq: int = 0, action: str | None = None) -> list[AuditEntry]:
        """Entries in the order they happened, after a cursor, optionally of one action."""
        sql = "SELECT seq, time, key_name, action, target, request_id, outcome, details FROM audit WHERE seq > %s"
        args: list[Any] = [after_seq]
        if action is not None:
            sql += " AND action = %s"
            args.append(action)
        with self.pool.connection() as conn:
            rows = conn.execute(sql + " ORDER BY seq LIMIT %s", [*args, limit]).fetchall()
        return [entry_from_row(r) for r in rows]

    def close(self) -> None:
        """Nothing per store: the pool is closed by its owner."""
