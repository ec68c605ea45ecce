"""`dprime gallery migrate`: a SQLite gallery made by the service, copied into a real PostgreSQL and served from it
with the same identities, ids, keys, audit trail and embeddings of every model; checked by counts and checksums."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient

from dprime.cli import main
from service.config import Settings
from service.gallery_store import GalleryStore
from service.main import create_app
from tests.images import astronaut_jpeg, astronaut_variant_jpeg
from tests.pg_server import PgTestServer
from tests.test_service.conftest import ADMIN_KEY
from tests.test_service.test_models import wait_for


def _sqlite_gallery(settings: Settings) -> tuple[dict[str, str], str]:
    """A gallery with two collections, a scoped key and the embeddings of two models; (name -> id, the key)."""
    with TestClient(create_app(settings), headers={"X-API-Key": ADMIN_KEY}) as c:
        ids = {}
        for name, photo, collection in (("A", astronaut_jpeg(), "team-a"), ("B", astronaut_variant_jpeg(), "team-b")):
            r = c.post(
                "/v1/identities",
                data={"name": name, "collection": collection},
                files=[("images", ("a.jpg", photo))],
            )
            ids[name] = r.json()["identity"]["id"]
        _, key = c.app.state.dprime.keys.create("team-a reader", "read", collections=["team-a"])  # type: ignore[attr-defined]
        assert wait_for(c, c.post("/v1/admin/models/tiny-b/activate").json())["status"] == "succeeded"
    return ids, key


def test_a_sqlite_gallery_moves_to_postgresql_without_loss(
    pg_server: PgTestServer, make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite_settings = make_settings()
    ids, key = _sqlite_gallery(sqlite_settings)
    source = f"sqlite:///{sqlite_settings.gallery_path}"
    with pg_server.database() as url:
        assert main(["gallery", "migrate", "--from", source, "--to", url]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["rows"]["identities"] == 2 and report["rows"]["faces"] == 2
        assert report["rows"]["embeddings"] == 4  # both models' vectors of both faces
        assert report["rows"]["api_keys"] == 1 and report["rows"]["audit"] >= 3
        # The vectors as PostgreSQL holds them are the SQLite ones, bit for bit.
        vs = GalleryStore(sqlite_settings.gallery_path).vectors("tiny-b", 16)
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT face_id, vector::text FROM embeddings WHERE model_id = 'tiny-b' ORDER BY face_id"
            ).fetchall()
        assert [r[0] for r in rows] == vs.face_ids.tolist()
        np.testing.assert_array_equal(np.array([json.loads(r[1]) for r in rows], dtype=np.float32), vs.vectors)

        pg_settings = make_settings(gallery_url=url, data_dir=Path(str(sqlite_settings.data_dir) + "-pg"))
        with TestClient(create_app(pg_settings), headers={"X-API-Key": ADMIN_KEY}) as c:
            assert c.get("/ready").json()["model_id"] == "tiny-b"  # the model the gallery was pinned to
            scoped = c.post("/v1/search", files={"image": ("q.jpg", astronaut_jpeg())}, headers={"X-API-Key": key})
            assert [h["identity_id"] for h in scoped.json()["hits"]] == [ids["A"]]
            everyone = c.post("/v1/search", files={"image": ("q.jpg", astronaut_jpeg())}).json()
            assert {h["identity_id"] for h in everyone["hits"]} == set(ids.values())
            actions = [i["action"] for i in c.get("/v1/admin/audit").json()["items"]]
            assert actions[:3] == ["identity.enroll", "identity.enroll", "model.activate"]
            # New rows get fresh ids past the copied ones.
            r = c.post("/v1/identities", data={"name": "C"}, files=[("images", ("c.jpg", astronaut_jpeg()))])
            assert r.status_code == 201, r.text

        # A database that already holds a gallery is refused, and left as it was.
        assert main(["gallery", "migrate", "--from", source, "--to", url]) == 2
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT COUNT(*) FROM identities").fetchone() == (3,)


def test_migrate_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    assert main(["gallery", "migrate", "--from", "mysql://x", "--to", "postgresql://y"]) == 2
    missing = f"sqlite:///{tmp_path / 'none.sqlite3'}"
    assert main(["gallery", "migrate", "--from", missing, "--to", "postgresql://u@127.0.0.1:1/db"]) == 2


def test_sqlite_backups_refuse_a_postgresql_gallery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DPRIME_GALLERY_URL", "postgresql://dprime@db/dprime")
    assert main(["gallery", "--data-dir", str(tmp_path), "backup", str(tmp_path / "b")]) == 2
    assert main(["gallery", "--data-dir", str(tmp_path), "restore", str(tmp_path / "b")]) == 2
    assert not (tmp_path / "b").exists()
