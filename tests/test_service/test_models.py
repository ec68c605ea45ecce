"""Model listing, hot switch with gallery re-embedding, rollback, and refused switches."""

import time
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from facecore.constants import MODEL_FILENAME
from facecore.registry import ModelRegistry
from service.config import Settings
from service.main import create_app
from tests.factories import write_tiny_model
from tests.images import astronaut_jpeg, astronaut_variant_jpeg
from tests.pg_server import both_backends
from tests.test_service.conftest import ADMIN_KEY

pytestmark = both_backends()


def wait_for(client: TestClient, job: dict[str, Any]) -> dict[str, Any]:
    for _ in range(200):
        job = client.get(f"/v1/admin/jobs/{job['job_id']}").json()
        if job["status"] != "running":
            return job
        time.sleep(0.05)
    raise AssertionError(f"job did not finish: {job}")


def test_models_list_and_active(client: TestClient) -> None:
    body = client.get("/v1/models").json()
    assert body["serving_model_id"] == "tiny-a"
    by_id = {m["model_id"]: m for m in body["models"]}
    assert set(by_id) == {"tiny-a", "tiny-b"} and by_id["tiny-a"]["active"] and by_id["tiny-a"]["serving"]
    active = client.get("/v1/models/active").json()
    assert active["embedding_dim"] == 8 and active["default_operating_point"] == "far_1e-3"
    assert [p["name"] for p in active["operating_points"]] == ["far_1e-3", "eer"]


def test_switch_re_embeds_the_gallery_then_rolls_back(client: TestClient, settings: Settings) -> None:
    enrolled = client.post(
        "/v1/identities",
        data={"name": "Eileen"},
        files=[("images", ("a.jpg", astronaut_jpeg())), ("images", ("b.jpg", astronaut_variant_jpeg()))],
    )
    identity_id = enrolled.json()["identity"]["id"]
    r = client.post("/v1/admin/models/tiny-b/activate")
    assert r.status_code == 202
    job = wait_for(client, r.json())
    assert job["status"] == "succeeded", job
    assert (job["from_model_id"], job["target_model_id"], job["faces_done"]) == ("tiny-a", "tiny-b", 2)
    assert ModelRegistry(settings.models_dir).active_id() == "tiny-b"
    assert client.get("/ready").json()["model_id"] == "tiny-b"
    search = client.post("/v1/search", files={"image": ("q.jpg", astronaut_jpeg())}).json()
    assert search["model_id"] == "tiny-b" and search["hits"][0]["identity_id"] == identity_id
    # The chip re-embedding reproduces what the new model gives on the original photo.
    direct = client.post("/v1/embed", files={"image": ("q.jpg", astronaut_jpeg())}).json()["faces"][0]
    assert len(direct["embedding"]) == 16 and search["hits"][0]["cosine"] > 0.98
    # A face enrolled under tiny-b, then roll back: tiny-a catches up on it from its chip.
    client.post(f"/v1/identities/{identity_id}/faces", files=[("images", ("c.jpg", astronaut_jpeg()))])
    job = wait_for(client, client.post("/v1/admin/models/rollback").json())
    assert job["status"] == "succeeded" and job["target_model_id"] == "tiny-a", job
    assert ModelRegistry(settings.models_dir).active_id() == "tiny-a"
    faces = client.get(f"/v1/identities/{identity_id}").json()["faces"]
    assert len(faces) == 3 and all(f["kappa"] is not None for f in faces)
    r = client.post("/v1/verify", files={"image_a": ("a.jpg", astronaut_jpeg())}, data={"identity_id": identity_id})
    assert r.json()["model_id"] == "tiny-a" and r.json()["identity"]["faces_compared"] == 3


def test_refused_switches_leave_the_serving_model(client: TestClient, settings: Settings) -> None:
    r = client.post("/v1/admin/models/nope/activate")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_model")
    write_tiny_model(settings.models_dir, "broken")
    (settings.models_dir / "broken" / MODEL_FILENAME).write_bytes(b"tampered")
    job = wait_for(client, client.post("/v1/admin/models/broken/activate").json())
    assert job["status"] == "failed" and job["error"]["code"] == "model_load_failed"
    assert "checksum mismatch" in job["error"]["message"]
    assert client.get("/ready").json()["model_id"] == "tiny-a"
    r = client.post("/v1/admin/models/rollback")
    assert r.json()["error"]["message"] == "nothing to roll back to: no previously active model is recorded"
    assert client.get("/v1/admin/jobs/zzz").json()["error"]["code"] == "unknown_job"


def test_restart_after_an_offline_activation_re_embeds_at_start(settings: Settings) -> None:
    with TestClient(create_app(settings), headers={"X-API-Key": ADMIN_KEY}) as c:
        c.post("/v1/identities", data={"name": "E"}, files=[("images", ("a.jpg", astronaut_jpeg()))])
    ModelRegistry(settings.models_dir).activate("tiny-b")  # `dprime models activate` while stopped
    with TestClient(create_app(settings), headers={"X-API-Key": ADMIN_KEY}) as c:
        body = c.post("/v1/search", files={"image": ("q.jpg", astronaut_jpeg())}).json()
        # A shared gallery serves the model it is pinned to: one replica's models folder must not move the rest.
        expected = "tiny-b" if settings.gallery_url is None else "tiny-a"
        assert body["model_id"] == expected and body["result"] == "match"
        assert np.isclose(body["hits"][0]["cosine"], 1.0, atol=0.02)


def test_switch_refused_when_crops_were_not_kept(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(store_crops=False)
    with TestClient(create_app(settings), headers={"X-API-Key": ADMIN_KEY}) as c:
        c.post("/v1/identities", data={"name": "E"}, files=[("images", ("a.jpg", astronaut_jpeg()))])
        job = wait_for(c, c.post("/v1/admin/models/tiny-b/activate").json())
        assert job["status"] == "failed" and job["error"]["details"] == {"faces_without_chip": 1}
        assert c.get("/ready").json()["model_id"] == "tiny-a"


def test_report_figures_are_listed_and_served_to_reading_keys(client: TestClient, settings: Settings) -> None:
    report = settings.models_dir / "tiny-a" / "report"
    report.mkdir()
    png = astronaut_png_bytes()
    (report / "scores.png").write_bytes(png)
    (report / "calibration.html").write_text("<p>not a figure</p>")
    body = client.get("/v1/models/tiny-a/report").json()
    assert body == {
        "model_id": "tiny-a",
        "plots": [{"name": "scores.png", "url": "/v1/models/tiny-a/report/scores.png"}],
    }
    r = client.get("/v1/models/tiny-a/report/scores.png")
    assert (r.status_code, r.headers["content-type"], r.content) == (200, "image/png", png)
    assert client.get("/v1/models/tiny-b/report").json()["plots"] == []
    for path, code in (
        ("/v1/models/tiny-a/report/calibration.html", "not_found"),
        ("/v1/models/tiny-a/report/..%2Fmanifest.json", "not_found"),
        ("/v1/models/ghost/report", "unknown_model"),
        ("/v1/models/ghost/report/scores.png", "unknown_model"),
    ):
        r = client.get(path)
        assert (r.status_code, r.json()["error"]["code"]) == (404, code), path
    assert client.get("/v1/models/tiny-a/report", headers={"X-API-Key": ""}).status_code == 401


def astronaut_png_bytes() -> bytes:
    from tests.images import astronaut, encode

    return encode(astronaut()[:64, :64], "PNG")
