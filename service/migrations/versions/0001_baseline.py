"""The gallery as it was before migrations: identities, faces, chips, per-model embeddings; on PostgreSQL also the
API keys, the audit trail and the calibrations, which on SQLite keep their own files.

On SQLite every statement is CREATE ... IF NOT EXISTS, so a gallery file made before migrations is adopted as is.
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_SQLITE = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS identities (
        rowid INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, name TEXT NOT NULL, metadata TEXT NOT NULL,
        created TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS faces (
        id INTEGER PRIMARY KEY,
        identity_rowid INTEGER NOT NULL REFERENCES identities(rowid) ON DELETE CASCADE,
        created TEXT NOT NULL, det_score REAL, chip BLOB, chip_format TEXT, chip_box TEXT, chip_landmarks TEXT,
        chip_scale REAL)""",
    "CREATE INDEX IF NOT EXISTS faces_identity ON faces(identity_rowid)",
    """CREATE TABLE IF NOT EXISTS embeddings (
        face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE, model_id TEXT NOT NULL,
        vector BLOB NOT NULL, kappa REAL NOT NULL, PRIMARY KEY (face_id, model_id))""",
    "CREATE INDEX IF NOT EXISTS embeddings_model ON embeddings(model_id)",
]

_POSTGRES = [
    "CREATE EXTENSION IF NOT EXISTS vector",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE identities (
        rowid BIGSERIAL PRIMARY KEY, id TEXT UNIQUE NOT NULL, name TEXT NOT NULL, metadata TEXT NOT NULL,
        created TEXT NOT NULL)""",
    """CREATE TABLE faces (
        id BIGSERIAL PRIMARY KEY,
        identity_rowid BIGINT NOT NULL REFERENCES identities(rowid) ON DELETE CASCADE,
        created TEXT NOT NULL, det_score DOUBLE PRECISION, chip BYTEA, chip_format TEXT, chip_box TEXT,
        chip_landmarks TEXT, chip_scale DOUBLE PRECISION)""",
    "CREATE INDEX faces_identity ON faces(identity_rowid)",
    # vector without a dimension: models of different sizes keep their embeddings side by side.
    """CREATE TABLE embeddings (
        face_id BIGINT NOT NULL REFERENCES faces(id) ON DELETE CASCADE, model_id TEXT NOT NULL,
        vector vector NOT NULL, kappa DOUBLE PRECISION NOT NULL, PRIMARY KEY (face_id, model_id))""",
    "CREATE INDEX embeddings_model ON embeddings(model_id)",
    """CREATE TABLE api_keys (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL CHECK (role IN ('read', 'admin')),
        key_sha256 TEXT UNIQUE NOT NULL, created TEXT NOT NULL, revoked TEXT, expires TEXT, last_used TEXT)""",
    """CREATE TABLE audit (
        seq BIGSERIAL PRIMARY KEY, time TEXT NOT NULL, key_name TEXT NOT NULL, action TEXT NOT NULL, target TEXT,
        request_id TEXT, outcome TEXT NOT NULL, details TEXT NOT NULL)""",
    "CREATE INDEX audit_action ON audit(action)",
    """CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$""",
    """CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION audit_append_only()""",
    "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
    """CREATE TABLE calibrations (
        id TEXT PRIMARY KEY, model_id TEXT NOT NULL, version INTEGER NOT NULL, created TEXT NOT NULL,
        record TEXT NOT NULL, adopted INTEGER NOT NULL DEFAULT 0, UNIQUE (model_id, version))""",
    # What replicas follow: one row per committed change of the gallery, in commit order.
    """CREATE TABLE gallery_changes (
        seq BIGSERIAL PRIMARY KEY, op TEXT NOT NULL CHECK (op IN ('add', 'remove')),
        face_ids BIGINT[] NOT NULL, time TIMESTAMPTZ NOT NULL DEFAULT now())""",
]


def upgrade() -> None:
    for statement in _POSTGRES if op.get_context().dialect.name == "postgresql" else _SQLITE:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the baseline is not undone: restore a backup instead")
