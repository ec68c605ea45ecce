"""Gallery calibrations in the PostgreSQL gallery database, versioned per model like the SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from psycopg_pool import ConnectionPool

from facecore.decision_records import DecisionSet


class PgCalibrationStore:
    """The CalibrationStore's interface over the shared database."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def active(self, model_id: str) -> DecisionSet | None:
        """The adopted gallery calibration of a model, if any."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT record FROM calibrations WHERE model_id = %s AND adopted = 1", (model_id,)
            ).fetchone()
        return None if row is None else DecisionSet.model_validate_json(row[0])

    def adopt(self, model_id: str, decision_set: DecisionSet) -> DecisionSet:
        """Store a new version for the model and make it the adopted one (one transaction)."""
        with self.pool.connection() as conn, conn.transaction():
            # Two replicas adopting at once must not both take the same version number.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('dprime.calibrations'))")
            row = conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM calibrations WHERE model_id = %s", (model_id,)
            ).fetchone()
            version = int(row[0] if row else 0) + 1
            stored = decision_set.model_copy(update={"id": f"gallery-{model_id}-v{version}", "source": "gallery"})
            conn.execute("UPDATE calibrations SET adopted = 0 WHERE model_id = %s", (model_id,))
            conn.execute(
                "INSERT INTO calibrations (id, model_id, version, created, record, adopted) "
                "VALUES (%s, %s, %s, %s, %s, 1)",
                (stored.id, model_id, version, datetime.now(UTC).isoformat(), stored.model_dump_json()),
            )
        return stored

    def revert(self, model_id: str) -> bool:
        """Un-adopt the model's gallery calibration; False when none was adopted."""
        with self.pool.connection() as conn:
            cur = conn.execute("UPDATE calibrations SET adopted = 0 WHERE model_id = %s AND adopted = 1", (model_id,))
            return cur.rowcount > 0

    def versions(self, model_id: str) -> list[str]:
        """Ids of every stored version of the model, oldest first."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT id FROM calibrations WHERE model_id = %s ORDER BY version", (model_id,)
            ).fetchall()
        return [str(r[0]) for r in rows]

    def backup(self, dest: Path) -> None:
        """Refused: a PostgreSQL gallery is backed up with the database's own tools."""
        raise NotImplementedError("back up a PostgreSQL gallery with pg_dump (see docs/operations.md)")

    def close(self) -> None:
        """Nothing per store: the pool is closed by its owner."""
