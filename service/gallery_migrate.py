"""`dprime gallery migrate`: copy a SQLite gallery (with its keys, audit trail and calibrations) into PostgreSQL.

The copy keeps every id (identities, faces, audit entries), so API answers, audit targets and calibration ids stay
valid. It runs in one PostgreSQL transaction and is checked before that transaction commits: the row count of
every table and a sha256 over every embedding (face, model, float32 bytes) and every chip must match on both
sides, or nothing is kept. The SQLite side is read under the data directory's lock, so no service writes to it
meanwhile.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from facecore.errors import DprimeError
from service.data_lock import DataDirLock
from service.gallery_store import FACE_ID_MARK
from service.gallery_url import GalleryLocation
from service.schema import upgrade_schema

logger = logging.getLogger(__name__)

_BATCH = 2000
# Files beside a SQLite gallery that hold what PostgreSQL keeps in the same database.
_SIDE_FILES = {"api_keys": "keys.sqlite3", "audit": "audit.sqlite3", "calibrations": "calibrations.sqlite3"}
# table -> (columns copied, order). Ids are copied as they are.
_TABLES: dict[str, tuple[str, str]] = {
    "meta": ("key, value", "key"),
    "identities": ("rowid, id, name, metadata, created, collection", "rowid"),
    "faces": (
        "id, identity_rowid, created, det_score, chip, chip_format, chip_box, chip_landmarks, chip_scale",
        "id",
    ),
    "embeddings": ("face_id, model_id, vector, kappa", "face_id, model_id"),
    "api_keys": ("id, name, role, key_sha256, created, revoked, expires, last_used, collections", "id"),
    "audit": ("seq, time, key_name, action, target, request_id, outcome, details", "seq"),
    "calibrations": ("id, model_id, version, created, record, adopted", "id"),
}
# Sequences to move past the copied ids, so new rows do not collide with them.
_SEQUENCES = {"identities": "rowid", "faces": "id", "audit": "seq"}


class MigrationError(DprimeError):
    """The gallery cannot be copied, or the copy does not match its source (then nothing was kept)."""


class MigrationReport(BaseModel):
    """What was copied, and the checks both sides passed."""

    source: str
    dest: str
    rows: dict[str, int]
    vectors_sha256: str
    chips_sha256: str


def _sqlite_tables(gallery: Path) -> dict[str, Path]:
    """Each table's SQLite file (absent side files are skipped: a gallery used without keys has none)."""
    files = dict.fromkeys(("meta", "identities", "faces", "embeddings"), gallery)
    for table, name in _SIDE_FILES.items():
        if (gallery.parent / name).is_file():
            files[table] = gallery.parent / name
    return files


def _read_sqlite(path: Path, table: str) -> Iterator[tuple[Any, ...]]:
    columns, order = _TABLES[table]
    if table == "api_keys":
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        have = {r[1] for r in conn.execute("PRAGMA table_info(api_keys)")}
        conn.close()
        # Keys files from before expiry and collections lack those columns: they read as NULL.
        columns = ", ".join(c if c in have else f"NULL AS {c}" for c in columns.split(", "))
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        cur = conn.execute(f"SELECT {columns} FROM {table} ORDER BY {order}")
        while rows := cur.fetchmany(_BATCH):
            yield from rows
    finally:
        conn.close()


class _Digest:
    """sha256 over embeddings (face id, model id, float32 bytes) and chips (face id, bytes), in id order."""

    def __init__(self) -> None:
        self.vectors = hashlib.sha256()
        self.chips = hashlib.sha256()

    def vector(self, face_id: int, model_id: str, values: np.ndarray) -> None:
        self.vectors.update(f"{face_id}:{model_id}:".encode())
        self.vectors.update(np.ascontiguousarray(values, dtype="<f4").tobytes())

    def chip(self, face_id: int, data: bytes | None) -> None:
        self.chips.update(f"{face_id}:".encode())
        self.chips.update(data or b"")


def _to_pg(table: str, row: tuple[Any, ...], digest: _Digest) -> tuple[Any, ...]:
    if table == "embeddings":
        face_id, model_id, blob, kappa = row
        vector = np.frombuffer(blob, dtype="<f4")
        digest.vector(int(face_id), str(model_id), vector)
        return (face_id, model_id, vector.astype(np.float32), kappa)
    if table == "faces":
        digest.chip(int(row[0]), row[4])
    return row


def _pg_digest(conn: Any) -> _Digest:
    digest = _Digest()
    with conn.cursor(name="migrate_vectors") as cur:
        cur.itersize = _BATCH
        cur.execute("SELECT face_id, model_id, vector FROM embeddings ORDER BY face_id, model_id")
        for face_id, model_id, vector in cur:
            values = vector.to_numpy() if hasattr(vector, "to_numpy") else np.asarray(vector)
            digest.vector(int(face_id), str(model_id), values)
    with conn.cursor(name="migrate_chips") as cur:
        cur.itersize = _BATCH
        cur.execute("SELECT id, chip FROM faces ORDER BY id")
        for face_id, chip in cur:
            digest.chip(int(face_id), bytes(chip) if chip is not None else None)
    return digest


def _insert(conn: Any, table: str, rows: Iterable[tuple[Any, ...]]) -> int:
    columns = _TABLES[table][0]
    marks = ", ".join(["%s"] * len(columns.split(", ")))
    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"
    n = 0
    batch: list[tuple[Any, ...]] = []
    with conn.cursor() as cur:
        for row in rows:
            batch.append(row)
            if len(batch) == _BATCH:
                cur.executemany(sql, batch)
                n += len(batch)
                batch = []
        if batch:
            cur.executemany(sql, batch)
            n += len(batch)
    return n


def migrate(source: GalleryLocation, dest: GalleryLocation) -> MigrationReport:
    """Copy the SQLite gallery ``source`` into the empty PostgreSQL gallery ``dest``, checked before it commits."""
    if source.backend != "sqlite" or dest.backend != "postgresql":
        raise MigrationError(
            f"only sqlite:/// -> postgresql:// is supported, not {source.backend} -> {dest.backend}; "
            "to move a PostgreSQL gallery, use pg_dump and pg_restore"
        )
    gallery = source.sqlite_path
    assert gallery is not None
    if not gallery.is_file():
        raise MigrationError(f"no SQLite gallery at {gallery}")
    import psycopg
    from pgvector.psycopg import register_vector

    with DataDirLock(gallery.parent, "migrating its gallery"):
        # The source may predate collections: bring it to the newest schema first (adds columns, drops nothing).
        from service.gallery_store import GalleryStore

        GalleryStore(gallery).close()
        upgrade_schema(dest)
        files = _sqlite_tables(gallery)
        digest = _Digest()
        with psycopg.connect(dest.dsn) as conn:
            register_vector(conn)
            with conn.transaction():
                row = conn.execute(
                    "SELECT (SELECT COUNT(*) FROM identities) + (SELECT COUNT(*) FROM api_keys) "
                    "+ (SELECT COUNT(*) FROM audit)"
                ).fetchone()
                if row and row[0]:
                    raise MigrationError(f"{dest.redacted()} already holds a gallery; migrate into an empty database")
                conn.execute("DELETE FROM meta")
                copied: dict[str, int] = {}
                for table, path in files.items():
                    copied[table] = _insert(conn, table, (_to_pg(table, r, digest) for r in _read_sqlite(path, table)))
                for table, column in _SEQUENCES.items():
                    # Faces: also past the highest id SQLite ever gave out, so a deleted face's id stays unused.
                    mark = (
                        f", (SELECT CAST(value AS BIGINT) FROM meta WHERE key = '{FACE_ID_MARK}')"
                        if table == "faces"
                        else ""
                    )
                    conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                        f"COALESCE(GREATEST((SELECT MAX({column}) FROM {table}){mark}), 0) + 1, false)"
                    )
                _check(conn, copied, digest, source, dest)
                # PostgreSQL's sequence now carries the face-id high-water mark; a copy in meta would only go stale.
                conn.execute("DELETE FROM meta WHERE key = %s", (FACE_ID_MARK,))
    report = MigrationReport(
        source=source.redacted(),
        dest=dest.redacted(),
        rows=copied,
        vectors_sha256=digest.vectors.hexdigest(),
        chips_sha256=digest.chips.hexdigest(),
    )
    logger.info("copied %s from %s to %s; counts and checksums match", copied, source.redacted(), dest.redacted())
    return report


def _check(conn: Any, copied: dict[str, int], digest: _Digest, source: GalleryLocation, dest: GalleryLocation) -> None:
    """Raise (rolling the copy back) unless every count and both checksums agree."""
    for table, n in copied.items():
        row = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        if int(row[0]) != n:
            raise MigrationError(f"{table}: {n} rows read from {source.redacted()} but {row[0]} in {dest.redacted()}")
    back = _pg_digest(conn)
    for what, ours, theirs in (
        ("embeddings", digest.vectors, back.vectors),
        ("chips", digest.chips, back.chips),
    ):
        if ours.hexdigest() != theirs.hexdigest():
            raise MigrationError(f"the {what} read back from {dest.redacted()} differ from the source; nothing kept")
