"""The gallery's source of truth: identities, faces, their chips and per-model embeddings in SQLite (WAL).

Every enrollment is one transaction, committed with synchronous=FULL before it is acknowledged, so a
crash never loses an acknowledged face. Embeddings are keyed by (face, model): a new model's vectors
sit beside the old ones until a switch commits, which is what makes rollback cheap.

Deletion is erasure: secure_delete makes SQLite overwrite freed content with zeros, and after each deletion
the WAL (which still holds the pages as they were) is checkpointed and truncated, so neither the database file
nor its WAL keeps a deleted face chip or embedding.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from service.sqlite_conn import ThreadLocalSQLite, online_backup

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS identities (
    rowid INTEGER PRIMARY KEY,
    id TEXT UNIQUE NOT NULL,
    name TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,
    identity_rowid INTEGER NOT NULL REFERENCES identities(rowid) ON DELETE CASCADE,
    created TEXT NOT NULL,
    det_score REAL,
    chip BLOB,
    chip_format TEXT,
    chip_box TEXT,
    chip_landmarks TEXT,
    chip_scale REAL
);
CREATE INDEX IF NOT EXISTS faces_identity ON faces(identity_rowid);
CREATE TABLE IF NOT EXISTS embeddings (
    face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    model_id TEXT NOT NULL,
    vector BLOB NOT NULL,
    kappa REAL NOT NULL,
    PRIMARY KEY (face_id, model_id)
);
CREATE INDEX IF NOT EXISTS embeddings_model ON embeddings(model_id);
"""


@dataclass(frozen=True)
class NewFace:
    """A face to store: unit direction mu (D,), kappa, and optionally its chip for re-embedding."""

    mu: npt.NDArray[np.float32]
    kappa: float
    det_score: float | None
    chip: bytes | None = None
    chip_format: str | None = None
    chip_box: list[float] | None = None
    chip_landmarks: list[list[float]] | None = None
    chip_scale: float | None = None


@dataclass(frozen=True)
class FaceRow:
    """A stored face (without its chip bytes)."""

    face_id: int
    created: str
    det_score: float | None
    kappa: float | None
    has_chip: bool


@dataclass(frozen=True)
class IdentityRow:
    """A stored identity with its faces."""

    rowid: int
    identity_id: str
    name: str
    metadata: dict[str, Any]
    created: str
    faces: list[FaceRow]


@dataclass(frozen=True)
class StoredChip:
    """A face chip as stored, for re-embedding."""

    face_id: int
    data: bytes
    fmt: str
    box: list[float]
    landmarks: list[list[float]]
    scale: float


@dataclass(frozen=True)
class VectorSet:
    """Embeddings of one model: face ids (N,), unit vectors (N, D) float32, kappas (N,)."""

    face_ids: npt.NDArray[np.int64]
    vectors: npt.NDArray[np.float32]
    kappas: npt.NDArray[np.float64]


def _now() -> str:
    return datetime.now(UTC).isoformat()


class GalleryStore:
    """Thread-safe access to the gallery database (one connection per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        # synchronous=FULL: a committed enrollment survives a power cut, not only a process crash.
        self._db = ThreadLocalSQLite(
            self.path, ("synchronous=FULL", "foreign_keys=ON", "secure_delete=ON"), {"casefold": str.casefold}
        )
        self._conn().executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        return self._db.get()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT, rolled back on any error)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection."""
        self._db.close()

    def backup(self, dest: Path) -> None:
        """A consistent copy of the gallery as it is now, taken while it serves (SQLite's online backup)."""
        online_backup(self.path, dest)

    # --- meta -------------------------------------------------------------------------------------------
    def pinned_model(self) -> str | None:
        """The model whose embeddings the gallery currently serves."""
        row = self._conn().execute("SELECT value FROM meta WHERE key = 'model_id'").fetchone()
        return str(row[0]) if row else None

    def pin_model(self, model_id: str) -> None:
        """Record the model the gallery serves."""
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('model_id', ?)", (model_id,))

    # --- identities -------------------------------------------------------------------------------------
    def create_identity(
        self, name: str, metadata: dict[str, Any], faces: Sequence[NewFace], model_id: str
    ) -> tuple[IdentityRow, list[int]]:
        """Insert an identity and its faces and embeddings in one transaction."""
        identity_id = uuid.uuid4().hex
        created = _now()
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO identities (id, name, metadata, created) VALUES (?, ?, ?, ?)",
                (identity_id, name, json.dumps(metadata), created),
            )
            rowid = int(cur.lastrowid or 0)
            face_ids = self._insert_faces(conn, rowid, faces, model_id)
        row = self.get_identity(identity_id, model_id)
        if row is None:
            raise RuntimeError(f"identity {identity_id} vanished right after its insert committed")
        return row, face_ids

    def add_faces(self, identity_id: str, faces: Sequence[NewFace], model_id: str) -> list[int] | None:
        """Add faces to an existing identity in one transaction; None when the identity does not exist."""
        with self._tx() as conn:
            found = conn.execute("SELECT rowid FROM identities WHERE id = ?", (identity_id,)).fetchone()
            if found is None:
                return None
            return self._insert_faces(conn, int(found[0]), faces, model_id)

    def _insert_faces(
        self, conn: sqlite3.Connection, identity_rowid: int, faces: Sequence[NewFace], model_id: str
    ) -> list[int]:
        ids = []
        created = _now()
        for f in faces:
            cur = conn.execute(
                "INSERT INTO faces (identity_rowid, created, det_score, chip, chip_format, chip_box, chip_landmarks,"
                " chip_scale) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    identity_rowid,
                    created,
                    f.det_score,
                    f.chip,
                    f.chip_format,
                    json.dumps(f.chip_box) if f.chip_box is not None else None,
                    json.dumps(f.chip_landmarks) if f.chip_landmarks is not None else None,
                    f.chip_scale,
                ),
            )
            face_id = int(cur.lastrowid or 0)
            conn.execute(
                "INSERT INTO embeddings (face_id, model_id, vector, kappa) VALUES (?, ?, ?, ?)",
                (face_id, model_id, np.asarray(f.mu, dtype=np.float32).tobytes(), float(f.kappa)),
            )
            ids.append(face_id)
        return ids

    def get_identity(self, identity_id: str, model_id: str | None = None) -> IdentityRow | None:
        """An identity with its faces (kappa from model_id's embeddings when given)."""
        conn = self._conn()
        row = conn.execute(
            "SELECT rowid, id, name, metadata, created FROM identities WHERE id = ?", (identity_id,)
        ).fetchone()
        if row is None:
            return None
        return self._identity_from_row(conn, row, model_id)

    def _identity_from_row(self, conn: sqlite3.Connection, row: tuple[Any, ...], model_id: str | None) -> IdentityRow:
        faces = [
            FaceRow(face_id=int(f[0]), created=str(f[1]), det_score=f[2], kappa=f[3], has_chip=bool(f[4]))
            for f in conn.execute(
                "SELECT f.id, f.created, f.det_score, e.kappa, f.chip IS NOT NULL FROM faces f "
                "LEFT JOIN embeddings e ON e.face_id = f.id AND e.model_id = ? "
                "WHERE f.identity_rowid = ? ORDER BY f.id",
                (model_id, row[0]),
            )
        ]
        return IdentityRow(
            rowid=int(row[0]),
            identity_id=str(row[1]),
            name=str(row[2]),
            metadata=json.loads(row[3]),
            created=str(row[4]),
            faces=faces,
        )

    def list_identities(
        self, limit: int, after_rowid: int = 0, model_id: str | None = None, name_contains: str | None = None
    ) -> list[IdentityRow]:
        """Identities in creation order after a cursor, optionally only those whose name contains a text."""
        conn = self._conn()
        sql = "SELECT rowid, id, name, metadata, created FROM identities WHERE rowid > ?"
        args: list[Any] = [after_rowid]
        if name_contains:
            # casefold, not SQLite's lower(): that one folds ASCII only, and names are not ASCII only.
            sql += " AND instr(casefold(name), ?) > 0"
            args.append(name_contains.casefold())
        rows = conn.execute(sql + " ORDER BY rowid LIMIT ?", (*args, limit)).fetchall()
        return [self._identity_from_row(conn, r, model_id) for r in rows]

    def delete_identity(self, identity_id: str) -> list[int] | None:
        """Delete an identity with its faces, chips and embeddings; returns the deleted face ids (None if absent)."""
        with self._tx() as conn:
            found = conn.execute("SELECT rowid FROM identities WHERE id = ?", (identity_id,)).fetchone()
            if found is None:
                return None
            face_ids = [int(r[0]) for r in conn.execute("SELECT id FROM faces WHERE identity_rowid = ?", found)]
            conn.execute("DELETE FROM identities WHERE rowid = ?", found)
        self._db.checkpoint_truncate()
        return face_ids

    def counts(self) -> tuple[int, int]:
        """(identities, faces)."""
        conn = self._conn()
        n_ids = int(conn.execute("SELECT COUNT(*) FROM identities").fetchone()[0])
        n_faces = int(conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0])
        return n_ids, n_faces

    # --- embeddings -------------------------------------------------------------------------------------
    def vectors(self, model_id: str, dim: int, identity_id: str | None = None) -> VectorSet:
        """Every embedding of one model (optionally of one identity's faces)."""
        sql = "SELECT e.face_id, e.vector, e.kappa FROM embeddings e"
        args: tuple[Any, ...] = (model_id,)
        if identity_id is not None:
            sql += " JOIN faces f ON f.id = e.face_id JOIN identities i ON i.rowid = f.identity_rowid"
            sql += " WHERE e.model_id = ? AND i.id = ?"
            args = (model_id, identity_id)
        else:
            sql += " WHERE e.model_id = ?"
        rows = self._conn().execute(sql + " ORDER BY e.face_id", args).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
        kappas = np.fromiter((r[2] for r in rows), dtype=np.float64, count=len(rows))
        return VectorSet(face_ids=ids, vectors=vecs.copy(), kappas=kappas)

    def chips_missing(self, model_id: str, limit: int) -> list[StoredChip]:
        """Up to ``limit`` stored chips of faces that have no embedding for model_id yet."""
        rows = (
            self._conn()
            .execute(
                "SELECT f.id, f.chip, f.chip_format, f.chip_box, f.chip_landmarks, f.chip_scale FROM faces f "
                "WHERE f.chip IS NOT NULL AND NOT EXISTS "
                "(SELECT 1 FROM embeddings e WHERE e.face_id = f.id AND e.model_id = ?) ORDER BY f.id LIMIT ?",
                (model_id, limit),
            )
            .fetchall()
        )
        return [
            StoredChip(
                face_id=int(r[0]),
                data=bytes(r[1]),
                fmt=str(r[2]),
                box=json.loads(r[3]),
                landmarks=json.loads(r[4]),
                scale=float(r[5]),
            )
            for r in rows
        ]

    def count_missing(self, model_id: str) -> tuple[int, int]:
        """(faces lacking an embedding for model_id, of which without a chip to re-embed from)."""
        conn = self._conn()
        base = "FROM faces f WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.face_id = f.id AND e.model_id = ?)"
        missing = int(conn.execute("SELECT COUNT(*) " + base, (model_id,)).fetchone()[0])
        no_chip = int(conn.execute("SELECT COUNT(*) " + base + " AND f.chip IS NULL", (model_id,)).fetchone()[0])
        return missing, no_chip

    def put_embeddings(
        self, model_id: str, face_ids: Sequence[int], mus: npt.NDArray[np.float64], kappas: npt.NDArray[np.float64]
    ) -> None:
        """Store (or replace) one model's embeddings of existing faces, skipping faces deleted meanwhile."""
        with self._tx() as conn:
            for fid, mu, kappa in zip(face_ids, mus, kappas, strict=True):
                conn.execute(
                    "INSERT OR REPLACE INTO embeddings (face_id, model_id, vector, kappa) "
                    "SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM faces WHERE id = ?)",
                    (int(fid), model_id, np.asarray(mu, dtype=np.float32).tobytes(), float(kappa), int(fid)),
                )

    def face_owners(self, face_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        """face id -> (identity id, name)."""
        if not face_ids:
            return {}
        marks = ",".join("?" * len(face_ids))
        rows = (
            self._conn()
            .execute(
                f"SELECT f.id, i.id, i.name FROM faces f JOIN identities i ON i.rowid = f.identity_rowid "
                f"WHERE f.id IN ({marks})",
                [int(x) for x in face_ids],
            )
            .fetchall()
        )
        return {int(r[0]): (str(r[1]), str(r[2])) for r in rows}

    def face_kappa(self, face_id: int, model_id: str) -> float | None:
        """kappa of one face under one model (None when it has no embedding for it)."""
        row = (
            self._conn()
            .execute("SELECT kappa FROM embeddings WHERE face_id = ? AND model_id = ?", (face_id, model_id))
            .fetchone()
        )
        return None if row is None else float(row[0])

    def labelled_vectors(self, model_id: str, dim: int) -> tuple[VectorSet, npt.NDArray[np.str_]]:
        """Every embedding of one model and the identity id of each face (what a gallery calibration needs)."""
        rows = (
            self._conn()
            .execute(
                "SELECT e.face_id, e.vector, e.kappa, i.id FROM embeddings e JOIN faces f ON f.id = e.face_id "
                "JOIN identities i ON i.rowid = f.identity_rowid WHERE e.model_id = ? ORDER BY e.face_id",
                (model_id,),
            )
            .fetchall()
        )
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
        kappas = np.fromiter((r[2] for r in rows), dtype=np.float64, count=len(rows))
        owners = np.array([r[3] for r in rows], dtype=np.str_)
        return VectorSet(face_ids=ids, vectors=vecs.copy(), kappas=kappas), owners
