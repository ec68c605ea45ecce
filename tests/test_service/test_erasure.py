"""Erasure that is real: after DELETE, none of the identity's face-chip or embedding bytes can be found in the
gallery's database file, its WAL or its shared-memory file, while the other identities' bytes still can."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from fastapi.testclient import TestClient

from service.config import Settings
from tests.images import astronaut_jpeg, astronaut_variant_jpeg

logger = logging.getLogger(__name__)


def on_disk(settings: Settings) -> bytes:
    """Every byte SQLite keeps for the gallery: the database file, its WAL and its shared-memory index."""
    path = settings.gallery_path
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return b"".join(p.read_bytes() for p in files if p.exists())


def stored_bytes(settings: Settings, identity_id: str) -> list[bytes]:
    """The identity's chips and embedding vectors as stored."""
    conn = sqlite3.connect(settings.gallery_path)
    try:
        rows = conn.execute(
            "SELECT f.chip, e.vector FROM faces f JOIN identities i ON i.rowid = f.identity_rowid "
            "JOIN embeddings e ON e.face_id = f.id WHERE i.id = ?",
            (identity_id,),
        ).fetchall()
    finally:
        conn.close()
    return [bytes(b) for row in rows for b in row]


def pieces(blob: bytes, size: int = 24) -> list[bytes]:
    """Windows spread over a blob: any one surviving would be a recoverable fragment."""
    step = max(size, len(blob) // 16)
    return [blob[i : i + size] for i in range(0, len(blob) - size + 1, step)]


def share_found(fragments: list[bytes], haystack: bytes) -> float:
    return sum(p in haystack for p in fragments) / len(fragments)


def enroll(client: TestClient, name: str, photo: bytes) -> str:
    r = client.post("/v1/identities", data={"name": name}, files=[("images", ("a.jpg", photo))])
    assert r.status_code == 201, r.text
    identity_id: str = r.json()["identity"]["id"]
    return identity_id


def test_deleted_chips_and_embeddings_leave_no_bytes_on_disk(client: TestClient, settings: Settings) -> None:
    erased = enroll(client, "erase me", astronaut_jpeg())
    kept = enroll(client, "keep me", astronaut_variant_jpeg())
    erased_bytes, kept_bytes = stored_bytes(settings, erased), stored_bytes(settings, kept)
    assert len(erased_bytes) == 2 and len(erased_bytes[0]) > 1000  # a PNG chip and a vector
    # Fragments only the deleted identity has (every PNG chip starts with the same header bytes).
    own = [p for b in erased_bytes for p in pieces(b) if not any(p in k for k in kept_bytes)]
    assert len(own) > 10
    before = on_disk(settings)
    # The search finds them while they exist (a window may straddle two SQLite pages, hence "nearly all").
    found_before = share_found(own, before)
    assert found_before > 0.8
    vector = erased_bytes[1]
    assert vector in before and not any(vector in k for k in kept_bytes)  # the whole embedding, as stored

    r = client.delete(f"/v1/identities/{erased}")
    assert r.status_code == 200 and r.json()["deleted_faces"] == 1

    after = on_disk(settings)
    found = [p for p in own if p in after]
    assert not found, f"{len(found)} fragments of the deleted identity are still on disk"
    assert vector not in after, "the deleted embedding is still on disk"
    logger.info(
        "erasure: %d fragments of the deleted chip (%d bytes) and embedding (%d bytes), and the whole embedding; "
        "on disk before the delete %.0f %%, after it none in %d bytes of database, WAL and shm",
        len(own),
        len(erased_bytes[0]),
        len(erased_bytes[1]),
        100 * found_before,
        len(after),
    )
    assert b"erase me" not in after
    assert share_found([p for b in kept_bytes for p in pieces(b)], after) > 0.8  # the rest is untouched
    wal = Path(str(settings.gallery_path) + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # the WAL was checkpointed and truncated
    assert client.get(f"/v1/identities/{kept}").status_code == 200
