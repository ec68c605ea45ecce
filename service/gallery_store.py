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
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from service.gallery_records import (
    DEFAULT_COLLECTION,
    CollectionRow,
    FaceRow,
    GalleryChange,
    IdentityRow,
    NewFace,
    StoredChip,
    VectorSet,
    identity_from_rows,
)
from service.gallery_url import GalleryLocation
from service.schema import upgrade_schema
from service.sqlite_conn import ThreadLocalSQLite, online_backup

__all__ = ["FaceRow", "GalleryStore", "IdentityRow", "NewFace", "StoredChip", "VectorSet"]

# meta key of the highest face id ever given out (deleted faces' ids are never reused).
FACE_ID_MARK = "face_id_high_water"


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
        upgrade_schema(GalleryLocation(backend="sqlite", url=f"sqlite:///{self.path}", sqlite_path=self.path))

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
        self,
        name: str,
        metadata: dict[str, Any],
        faces: Sequence[NewFace],
        model_id: str,
        collection: str = DEFAULT_COLLECTION,
    ) -> tuple[IdentityRow, list[int]]:
        """Insert an identity and its faces and embeddings in one transaction."""
        identity_id = uuid.uuid4().hex
        created = _now()
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO identities (id, name, metadata, created, collection) VALUES (?, ?, ?, ?, ?)",
                (identity_id, name, json.dumps(metadata), created, collection),
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
        # SQLite would hand the newest face's id out again once that face is deleted; a search index keyed by face
        # id (a graph keeps removed faces as waypoints, a snapshot on disk keeps their vectors) must never see one
        # id stand for two faces, so ids only grow, past a high-water mark kept in meta.
        last = self.face_id_high_water()  # inside this write transaction, so no other writer moves it meanwhile
        for offset, f in enumerate(faces, start=1):
            cur = conn.execute(
                "INSERT INTO faces (id, identity_rowid, created, det_score, chip, chip_format, chip_box,"
                " chip_landmarks, chip_scale) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    int(last) + offset,
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
        if ids:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (FACE_ID_MARK, str(max(ids))))
        return ids

    def get_identity(self, identity_id: str, model_id: str | None = None) -> IdentityRow | None:
        """An identity with its faces (kappa from model_id's embeddings when given)."""
        conn = self._conn()
        row = conn.execute(
            "SELECT rowid, id, name, metadata, created, collection FROM identities WHERE id = ?", (identity_id,)
        ).fetchone()
        if row is None:
            return None
        return self._identity_from_row(conn, row, model_id)

    def _identity_from_row(self, conn: sqlite3.Connection, row: tuple[Any, ...], model_id: str | None) -> IdentityRow:
        faces = conn.execute(
            "SELECT f.id, f.created, f.det_score, e.kappa, f.chip IS NOT NULL FROM faces f "
            "LEFT JOIN embeddings e ON e.face_id = f.id AND e.model_id = ? "
            "WHERE f.identity_rowid = ? ORDER BY f.id",
            (model_id, row[0]),
        )
        return identity_from_rows(row, faces)

    def list_identities(
        self,
        limit: int,
        after_rowid: int = 0,
        model_id: str | None = None,
        name_contains: str | None = None,
        collections: Collection[str] | None = None,
    ) -> list[IdentityRow]:
        """Identities in creation order after a cursor, optionally only those whose name contains a text and only
        those of some collections."""
        conn = self._conn()
        sql = "SELECT rowid, id, name, metadata, created, collection FROM identities WHERE rowid > ?"
        args: list[Any] = [after_rowid]
        if collections is not None:
            names = sorted(collections)
            sql += f" AND collection IN ({','.join('?' * len(names))})" if names else " AND 0"
            args.extend(names)
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

    def delete_collection(self, collection: str) -> tuple[int, list[int]]:
        """Delete every identity of a collection with its faces, chips and embeddings (erased like one identity);
        returns (identities, face ids) deleted."""
        with self._tx() as conn:
            n_ids = int(
                conn.execute("SELECT COUNT(*) FROM identities WHERE collection = ?", (collection,)).fetchone()[0]
            )
            face_ids = [
                int(r[0])
                for r in conn.execute(
                    "SELECT f.id FROM faces f JOIN identities i ON i.rowid = f.identity_rowid WHERE i.collection = ?",
                    (collection,),
                )
            ]
            conn.execute("DELETE FROM identities WHERE collection = ?", (collection,))
        self._db.checkpoint_truncate()
        return n_ids, face_ids

    def collections(self) -> list[CollectionRow]:
        """Every collection that holds an identity, by name."""
        rows = (
            self._conn()
            .execute(
                "SELECT i.collection, COUNT(DISTINCT i.rowid), COUNT(f.id) FROM identities i "
                "LEFT JOIN faces f ON f.identity_rowid = i.rowid GROUP BY i.collection ORDER BY i.collection"
            )
            .fetchall()
        )
        return [CollectionRow(name=str(r[0]), identities=int(r[1]), faces=int(r[2])) for r in rows]

    def changes_after(self, seq: int) -> list[GalleryChange]:
        """None: a SQLite gallery has one process, which applies its own changes."""
        return []

    def last_change(self) -> int:
        """Always 0 (see changes_after)."""
        return 0

    def face_id_high_water(self) -> int:
        """The highest face id ever given out (0 when none): no face will have this id or a lower one again."""
        (mark,) = (
            self._conn()
            .execute(
                "SELECT MAX(COALESCE((SELECT MAX(id) FROM faces), 0), "
                "COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?), 0))",
                (FACE_ID_MARK,),
            )
            .fetchone()
        )
        return int(mark)

    def counts(self) -> tuple[int, int]:
        """(identities, faces)."""
        conn = self._conn()
        n_ids = int(conn.execute("SELECT COUNT(*) FROM identities").fetchone()[0])
        n_faces = int(conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0])
        return n_ids, n_faces

    # --- embeddings -------------------------------------------------------------------------------------
    def vectors(self, model_id: str, dim: int, identity_id: str | None = None) -> VectorSet:
        """Every embedding of one model (optionally of one identity's faces), with each face's collection."""
        sql = (
            "SELECT e.face_id, e.vector, e.kappa, i.collection FROM embeddings e JOIN faces f ON f.id = e.face_id "
            "JOIN identities i ON i.rowid = f.identity_rowid WHERE e.model_id = ?"
        )
        args: tuple[Any, ...] = (model_id,)
        if identity_id is not None:
            sql += " AND i.id = ?"
            args = (model_id, identity_id)
        return self._vector_set(self._conn().execute(sql + " ORDER BY e.face_id", args).fetchall(), dim)

    def vectors_of_faces(self, model_id: str, dim: int, face_ids: Sequence[int]) -> VectorSet:
        """One model's embeddings of the given faces (those that still exist)."""
        marks = ",".join("?" * len(face_ids))
        rows = (
            self._conn()
            .execute(
                "SELECT e.face_id, e.vector, e.kappa, i.collection FROM embeddings e JOIN faces f ON f.id = e.face_id "
                f"JOIN identities i ON i.rowid = f.identity_rowid WHERE e.model_id = ? AND e.face_id IN ({marks}) "
                "ORDER BY e.face_id",
                (model_id, *[int(x) for x in face_ids]),
            )
            .fetchall()
        )
        return self._vector_set(rows, dim)

    @staticmethod
    def _vector_set(rows: list[Any], dim: int) -> VectorSet:
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
        kappas = np.fromiter((r[2] for r in rows), dtype=np.float64, count=len(rows))
        collections = np.array([r[3] for r in rows], dtype=np.str_)
        return VectorSet(face_ids=ids, vectors=vecs.copy(), kappas=kappas, collections=collections)

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
