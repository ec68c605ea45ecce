"""Gallery-calibrated decision sets, versioned per model, in their own SQLite file beside the gallery.

At most one version per model is adopted at a time; reverting un-adopts it, so decisions return to the model's
manifest. Old versions are kept, so what any past decision was based on can be looked up by its id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from facecore.decision_records import DecisionSet
from service.sqlite_conn import ThreadLocalSQLite, online_backup

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calibrations (
    id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    created TEXT NOT NULL,
    record TEXT NOT NULL,
    adopted INTEGER NOT NULL DEFAULT 0,
    UNIQUE (model_id, version)
);
"""


class CalibrationStore:
    """Adopted and past gallery calibrations."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db = ThreadLocalSQLite(path, ("synchronous=FULL",))
        self._db.get().executescript(_SCHEMA)

    def active(self, model_id: str) -> DecisionSet | None:
        """The adopted gallery calibration of a model, if any."""
        row = (
            self._db.get()
            .execute("SELECT record FROM calibrations WHERE model_id = ? AND adopted = 1", (model_id,))
            .fetchone()
        )
        return None if row is None else DecisionSet.model_validate_json(row[0])

    def adopt(self, model_id: str, decision_set: DecisionSet) -> DecisionSet:
        """Store a new version for the model and make it the adopted one (one transaction)."""
        conn = self._db.get()
        conn.execute("BEGIN IMMEDIATE")
        try:
            (last,) = conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM calibrations WHERE model_id = ?", (model_id,)
            ).fetchone()
            version = int(last) + 1
            stored = decision_set.model_copy(update={"id": f"gallery-{model_id}-v{version}", "source": "gallery"})
            conn.execute("UPDATE calibrations SET adopted = 0 WHERE model_id = ?", (model_id,))
            conn.execute(
                "INSERT INTO calibrations (id, model_id, version, created, record, adopted) VALUES (?, ?, ?, ?, ?, 1)",
                (stored.id, model_id, version, datetime.now(UTC).isoformat(), stored.model_dump_json()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return stored

    def revert(self, model_id: str) -> bool:
        """Un-adopt the model's gallery calibration; False when none was adopted."""
        cur = self._db.get().execute(
            "UPDATE calibrations SET adopted = 0 WHERE model_id = ? AND adopted = 1", (model_id,)
        )
        return cur.rowcount > 0

    def versions(self, model_id: str) -> list[str]:
        """Ids of every stored version of the model, oldest first."""
        rows = (
            self._db.get()
            .execute("SELECT id FROM calibrations WHERE model_id = ? ORDER BY version", (model_id,))
            .fetchall()
        )
        return [r[0] for r in rows]

    def backup(self, dest: Path) -> None:
        """A consistent copy of the calibrations as they are now (SQLite's online backup)."""
        online_backup(self.path, dest)

    def close(self) -> None:
        """Close this thread's connection."""
        self._db.close()
