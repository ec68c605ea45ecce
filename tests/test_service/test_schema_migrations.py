"""The gallery schema is Alembic's, on both backends: a SQLite gallery made before migrations is adopted and
brought up to date in place, and a PostgreSQL database is created from nothing; running again changes nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

from service.gallery_store import GalleryStore
from service.gallery_url import parse_gallery_url
from service.schema import MIGRATIONS_DIR, upgrade_schema
from tests.pg_server import PgTestServer

# The gallery file as releases before migrations wrote it.
OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE identities (rowid INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, name TEXT NOT NULL,
    metadata TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE faces (id INTEGER PRIMARY KEY, identity_rowid INTEGER NOT NULL REFERENCES identities(rowid)
    ON DELETE CASCADE, created TEXT NOT NULL, det_score REAL, chip BLOB, chip_format TEXT, chip_box TEXT,
    chip_landmarks TEXT, chip_scale REAL);
CREATE TABLE embeddings (face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE, model_id TEXT NOT NULL,
    vector BLOB NOT NULL, kappa REAL NOT NULL, PRIMARY KEY (face_id, model_id));
INSERT INTO identities (id, name, metadata, created) VALUES ('abc', 'Old', '{}', '2025-01-01T00:00:00+00:00');
"""


def head_revision() -> str:
    names = sorted(p.stem for p in (MIGRATIONS_DIR / "versions").glob("0*.py"))
    return names[-1].split("_", 1)[0]


def test_a_gallery_from_before_migrations_is_brought_up_to_date(tmp_path: Path) -> None:
    path = tmp_path / "gallery.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    conn.close()
    store = GalleryStore(path)
    row = store.get_identity("abc")
    assert row is not None and row.name == "Old" and row.collection == "default"
    store.close()
    GalleryStore(path).close()  # a second start finds nothing to do
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head_revision(),)]


def test_a_postgresql_database_is_created_from_nothing(pg_server: PgTestServer) -> None:
    with pg_server.database() as url:
        location = parse_gallery_url(url)
        upgrade_schema(location)
        upgrade_schema(location)
        with psycopg.connect(location.dsn) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head_revision(),)]
            tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
            assert {
                "identities",
                "faces",
                "embeddings",
                "api_keys",
                "audit",
                "calibrations",
                "gallery_changes",
            } <= tables
            assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'").fetchone() == ("vector",)
