"""The gallery in PostgreSQL + pgvector: the same repository as the SQLite store, shared by several replicas.

Each write is one transaction. Writes that change what a search can find also append a row to
``gallery_changes``; an advisory lock taken just before that row is numbered makes change numbers commit in
order, so a replica that has applied change n has seen every change before it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg_pool import ConnectionPool

from service.gallery_records import (
    DEFAULT_COLLECTION,
    CollectionRow,
    GalleryChange,
    IdentityRow,
    NewFace,
    StoredChip,
    VectorSet,
    identity_from_rows,
)

_CHANGES_LOCK = "SELECT pg_advisory_xact_lock(hashtext('dprime.gallery_changes'))"


def _now() -> str:
    return datetime.now(UTC).isoformat()


class PgGalleryStore:
    """Gallery storage over a psycopg pool (thread-safe: each call borrows a connection)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection]:
        with self.pool.connection() as conn, conn.transaction():
            yield conn

    def close(self) -> None:
        """Nothing per store: the pool is closed by its owner."""

    def backup(self, dest: Path) -> None:
        """Refused: a PostgreSQL gallery is backed up with the database's own tools."""
        raise NotImplementedError("back up a PostgreSQL gallery with pg_dump (see docs/operations.md)")

    # --- meta -------------------------------------------------------------------------------------------
    def pinned_model(self) -> str | None:
        """The model whose embeddings the gallery currently serves."""
        with self.pool.connection() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'model_id'").fetchone()
        return str(row[0]) if row else None

    def pin_model(self, model_id: str) -> None:
        """Record the model the gallery serves (replicas follow it)."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('model_id', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (model_id,),
            )

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
        with self._tx() as conn:
            row = conn.execute(
                "INSERT INTO identities (id, name, metadata, created, collection) VALUES (%s, %s, %s, %s, %s) "
                "RETURNING rowid",
                (identity_id, name, json.dumps(metadata), _now(), collection),
            ).fetchone()
            assert row is not None
            face_ids = self._insert_faces(conn, int(row[0]), faces, model_id)
            self._log_change(conn, "add", face_ids, collection)
        stored = self.get_identity(identity_id, model_id)
        if stored is None:
            raise RuntimeError(f"identity {identity_id} vanished right after its insert committed")
        return stored, face_ids

    def add_faces(self, identity_id: str, faces: Sequence[NewFace], model_id: str) -> list[int] | None:
        """Add faces to an existing identity in one transaction; None when the identity does not exist."""
        with self._tx() as conn:
            found = conn.execute(
                "SELECT rowid, collection FROM identities WHERE id = %s FOR UPDATE", (identity_id,)
            ).fetchone()
            if found is None:
                return None
            face_ids = self._insert_faces(conn, int(found[0]), faces, model_id)
            self._log_change(conn, "add", face_ids, str(found[1]))
            return face_ids

    @staticmethod
    def _log_change(conn: psycopg.Connection, op: str, face_ids: list[int], collection: str) -> None:
        if not face_ids:
            return
        conn.execute(_CHANGES_LOCK)
        conn.execute(
            "INSERT INTO gallery_changes (op, face_ids, collection) VALUES (%s, %s, %s)", (op, face_ids, collection)
        )

    @staticmethod
    def _insert_faces(
        conn: psycopg.Connection, identity_rowid: int, faces: Sequence[NewFace], model_id: str
    ) -> list[int]:
        ids = []
        created = _now()
        for f in faces:
            row = conn.execute(
                "INSERT INTO faces (identity_rowid, created, det_score, chip, chip_format, chip_box, chip_landmarks,"
                " chip_scale) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
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
            ).fetchone()
            assert row is not None
            face_id = int(row[0])
            conn.execute(
                "INSERT INTO embeddings (face_id, model_id, vector, kappa) VALUES (%s, %s, %s, %s)",
                (face_id, model_id, np.asarray(f.mu, dtype=np.float32), float(f.kappa)),
            )
            ids.append(face_id)
        return ids

    def get_identity(self, identity_id: str, model_id: str | None = None) -> IdentityRow | None:
        """An identity with its faces (kappa from model_id's embeddings when given)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT rowid, id, name, metadata, created, collection FROM identities WHERE id = %s", (identity_id,)
            ).fetchone()
            if row is None:
                return None
            return self._identity_from_row(conn, row, model_id)

    @staticmethod
    def _identity_from_row(conn: psycopg.Connection, row: tuple[Any, ...], model_id: str | None) -> IdentityRow:
        faces = conn.execute(
            "SELECT f.id, f.created, f.det_score, e.kappa, f.chip IS NOT NULL FROM faces f "
            "LEFT JOIN embeddings e ON e.face_id = f.id AND e.model_id = %s "
            "WHERE f.identity_rowid = %s ORDER BY f.id",
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
        """Identities in creation order after a cursor, optionally filtered by name text and collections."""
        sql = "SELECT rowid, id, name, metadata, created, collection FROM identities WHERE rowid > %s"
        args: list[Any] = [after_rowid]
        if name_contains:
            # Python's casefold on both sides would need a function in the database; lower() folds Unicode here.
            sql += " AND strpos(lower(name), lower(%s)) > 0"
            args.append(name_contains)
        if collections is not None:
            sql += " AND collection = ANY(%s)"
            args.append(sorted(collections))
        with self.pool.connection() as conn:
            rows = conn.execute(sql + " ORDER BY rowid LIMIT %s", (*args, limit)).fetchall()
            return [self._identity_from_row(conn, r, model_id) for r in rows]

    def delete_identity(self, identity_id: str) -> list[int] | None:
        """Delete an identity with its faces, chips and embeddings; returns the deleted face ids (None if absent)."""
        with self._tx() as conn:
            found = conn.execute(
                "SELECT rowid, collection FROM identities WHERE id = %s FOR UPDATE", (identity_id,)
            ).fetchone()
            if found is None:
                return None
            face_ids = [int(r[0]) for r in conn.execute("SELECT id FROM faces WHERE identity_rowid = %s", (found[0],))]
            conn.execute("DELETE FROM identities WHERE rowid = %s", (found[0],))
            self._log_change(conn, "remove", face_ids, str(found[1]))
        return face_ids

    def delete_collection(self, collection: str) -> tuple[int, list[int]]:
        """Delete every identity of a collection; returns (identities, face ids) deleted."""
        with self._tx() as conn:
            rowids = [
                int(r[0])
                for r in conn.execute(
                    "SELECT rowid FROM identities WHERE collection = %s FOR UPDATE", (collection,)
                ).fetchall()
            ]
            face_ids = [
                int(r[0])
                for r in conn.execute("SELECT id FROM faces WHERE identity_rowid = ANY(%s)", (rowids,)).fetchall()
            ]
            conn.execute("DELETE FROM identities WHERE rowid = ANY(%s)", (rowids,))
            self._log_change(conn, "remove", face_ids, collection)
        return len(rowids), face_ids

    def collections(self) -> list[CollectionRow]:
        """Every collection that holds an identity, by name."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT i.collection, COUNT(DISTINCT i.rowid), COUNT(f.id) FROM identities i "
                "LEFT JOIN faces f ON f.identity_rowid = i.rowid GROUP BY i.collection ORDER BY i.collection"
            ).fetchall()
        return [CollectionRow(name=str(r[0]), identities=int(r[1]), faces=int(r[2])) for r in rows]

    def counts(self) -> tuple[int, int]:
        """(identities, faces)."""
        with self.pool.connection() as conn:
            row = conn.execute("SELECT (SELECT COUNT(*) FROM identities), (SELECT COUNT(*) FROM faces)").fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    # --- changes other replicas follow -------------------------------------------------------------------
    def changes_after(self, seq: int) -> list[GalleryChange]:
        """Committed changes numbered above seq, in order."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT seq, op, face_ids, collection FROM gallery_changes WHERE seq > %s ORDER BY seq", (seq,)
            ).fetchall()
        return [GalleryChange(seq=int(r[0]), op=str(r[1]), face_ids=list(r[2]), collection=str(r[3])) for r in rows]

    def face_id_high_water(self) -> int:
        """The highest face id the sequence ever gave out (0 when none)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT COALESCE(GREATEST((SELECT MAX(id) FROM faces), "
                "pg_sequence_last_value(pg_get_serial_sequence('faces', 'id')::regclass)), 0)"
            ).fetchone()
        assert row is not None
        return int(row[0])

    def last_change(self) -> int:
        """The number of the newest committed change (0 when none)."""
        with self.pool.connection() as conn:
            row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM gallery_changes").fetchone()
        assert row is not None
        return int(row[0])

    # --- embeddings -------------------------------------------------------------------------------------
    _VECTORS = (
        "SELECT e.face_id, e.vector, e.kappa, i.collection FROM embeddings e JOIN faces f ON f.id = e.face_id "
        "JOIN identities i ON i.rowid = f.identity_rowid WHERE e.model_id = %s"
    )

    def vectors(self, model_id: str, dim: int, identity_id: str | None = None) -> VectorSet:
        """Every embedding of one model (optionally of one identity's faces), with each face's collection."""
        sql, args = self._VECTORS, [model_id]
        if identity_id is not None:
            sql += " AND i.id = %s"
            args.append(identity_id)
        with self.pool.connection() as conn:
            rows = conn.execute(sql + " ORDER BY e.face_id", args).fetchall()
        return _vector_set(rows, dim)

    def vectors_of_faces(self, model_id: str, dim: int, face_ids: Sequence[int]) -> VectorSet:
        """One model's embeddings of the given faces (those that still exist)."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                self._VECTORS + " AND e.face_id = ANY(%s) ORDER BY e.face_id", (model_id, [int(x) for x in face_ids])
            ).fetchall()
        return _vector_set(rows, dim)

    def chips_missing(self, model_id: str, limit: int) -> list[StoredChip]:
        """Up to ``limit`` stored chips of faces that have no embedding for model_id yet."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT f.id, f.chip, f.chip_format, f.chip_box, f.chip_landmarks, f.chip_scale FROM faces f "
                "WHERE f.chip IS NOT NULL AND NOT EXISTS "
                "(SELECT 1 FROM embeddings e WHERE e.face_id = f.id AND e.model_id = %s) ORDER BY f.id LIMIT %s",
                (model_id, limit),
            ).fetchall()
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
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE f.chip IS NULL) FROM faces f "
                "WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.face_id = f.id AND e.model_id = %s)",
                (model_id,),
            ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def put_embeddings(
        self, model_id: str, face_ids: Sequence[int], mus: npt.NDArray[np.float64], kappas: npt.NDArray[np.float64]
    ) -> None:
        """Store (or replace) one model's embeddings of existing faces, skipping faces deleted meanwhile."""
        with self._tx() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO embeddings (face_id, model_id, vector, kappa) "
                "SELECT %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM faces WHERE id = %s) "
                "ON CONFLICT (face_id, model_id) DO UPDATE SET vector = EXCLUDED.vector, kappa = EXCLUDED.kappa",
                [
                    (int(fid), model_id, np.asarray(mu, dtype=np.float32), float(kappa), int(fid))
                    for fid, mu, kappa in zip(face_ids, mus, kappas, strict=True)
                ],
            )

    def face_owners(self, face_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        """face id -> (identity id, name)."""
        if not face_ids:
            return {}
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT f.id, i.id, i.name FROM faces f JOIN identities i ON i.rowid = f.identity_rowid "
                "WHERE f.id = ANY(%s)",
                ([int(x) for x in face_ids],),
            ).fetchall()
        return {int(r[0]): (str(r[1]), str(r[2])) for r in rows}

    def face_kappa(self, face_id: int, model_id: str) -> float | None:
        """kappa of one face under one model (None when it has no embedding for it)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT kappa FROM embeddings WHERE face_id = %s AND model_id = %s", (face_id, model_id)
            ).fetchone()
        return None if row is None else float(row[0])

    def labelled_vectors(self, model_id: str, dim: int) -> tuple[VectorSet, npt.NDArray[np.str_]]:
        """Every embedding of one model and the identity id of each face (what a gallery calibration needs)."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT e.face_id, e.vector, e.kappa, i.collection, i.id FROM embeddings e "
                "JOIN faces f ON f.id = e.face_id JOIN identities i ON i.rowid = f.identity_rowid "
                "WHERE e.model_id = %s ORDER BY e.face_id",
                (model_id,),
            ).fetchall()
        owners = np.array([r[4] for r in rows], dtype=np.str_)
        return _vector_set(rows, dim), owners


def _as_array(value: Any) -> npt.NDArray[np.float32]:
    # pgvector hands back its Vector type (a column without a fixed dimension) or a numpy array.
    array = value.to_numpy() if hasattr(value, "to_numpy") else value
    return np.asarray(array, dtype=np.float32)


def _vector_set(rows: Sequence[Any], dim: int) -> VectorSet:
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    vecs = np.stack([_as_array(r[1]) for r in rows]) if rows else np.zeros((0, dim), dtype=np.float32)
    kappas = np.fromiter((r[2] for r in rows), dtype=np.float64, count=len(rows))
    collections = np.array([r[3] for r in rows], dtype=np.str_)
    return VectorSet(face_ids=ids, vectors=vecs.reshape(len(rows), dim), kappas=kappas, collections=collections)
