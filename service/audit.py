"""The audit trail: an append-only record of who changed the gallery, the keys or the serving model.

One row per action: when, the key's name, the action, its target (an identity, key or model id, never a
person's name or a face) and the request id that did it. SQLite triggers refuse every UPDATE and DELETE, so
the service itself cannot rewrite history; the file lives beside the gallery in its own database.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from service.sqlite_conn import ThreadLocalSQLite

AuditAction = Literal[
    "identity.enroll",
    "identity.add_faces",
    "identity.delete",
    "collection.delete",
    "key.create",
    "key.revoke",
    "model.activate",
    "model.rollback",
    "model.switch",
    "calibration.adopt",
    "calibration.revert",
]
# Who acted, in the audit trail, when a change comes from the command line rather than an API key.
CLI_ACTOR = "cli"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    key_name TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    request_id TEXT,
    outcome TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_action ON audit(action);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


@dataclass(frozen=True)
class AuditEntry:
    """One recorded action."""

    seq: int
    time: str
    key_name: str
    action: str
    target: str | None
    request_id: str | None
    outcome: str
    details: dict[str, Any]


class AuditLog:
    """Append and read the audit trail (synchronous=FULL: an acknowledged action's record survives a crash)."""

    def __init__(self, path: Path) -> None:
        self._db = ThreadLocalSQLite(path, ("synchronous=FULL",))
        self._db.get().executescript(_SCHEMA)

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
        self._db.get().execute(
            "INSERT INTO audit (time, key_name, action, target, request_id, outcome, details) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            entry_values(key_name, action, target, request_id, outcome, details),
        )

    def entries(self, limit: int, after_seq: int = 0, action: str | None = None) -> list[AuditEntry]:
        """Entries in the order they happened, after a cursor, optionally of one action."""
        sql = "SELECT seq, time, key_name, action, target, request_id, outcome, details FROM audit WHERE seq > ?"
        args: list[Any] = [after_seq]
        if action is not None:
            sql += " AND action = ?"
            args.append(action)
        rows = self._db.get().execute(sql + " ORDER BY seq LIMIT ?", [*args, limit]).fetchall()
        return [entry_from_row(r) for r in rows]

    def close(self) -> None:
        """Close this thread's connection."""
        self._db.close()


def entry_values(
    key_name: str,
    action: str,
    target: str | None,
    request_id: str | None,
    outcome: str,
    details: dict[str, Any] | None,
) -> tuple[str, str, str, str | None, str | None, str, str]:
    """The column values of a new entry (time, key_name, action, target, request_id, outcome, details)."""
    return (datetime.now(UTC).isoformat(), key_name, action, target, request_id, outcome, json.dumps(details or {}))


def entry_from_row(r: Sequence[Any]) -> AuditEntry:
    """An entry from a row of (seq, time, key_name, action, target, request_id, outcome, details), both backends."""
    return AuditEntry(
        seq=int(r[0]),
        time=r[1],
        key_name=r[2],
        action=r[3],
        target=r[4],
        request_id=r[5],
        outcome=r[6],
        details=json.loads(r[7]),
    )
