"""Liveness, readiness, metrics, request ids and the error envelope for unknown routes."""

from collections.abc import Callable

from fastapi.testclient import TestClient

from facecore.constants import ACTIVE_FILENAME
from service.config import Settings
from service.main import create_app
from tests.images import astronaut_jpeg


def test_health_and_ready_need_no_key(settings: Settings) -> None:
    with TestClient(create_app(settings)) as c:
        assert c.get("/health").json() == {"status": "ok"}
        r = c.get("/ready")
        assert r.status_code == 200
        body = r.json()
        assert body["ready"] is True and body["model_id"] == "tiny-a"
        assert body["providers"] == ["CPUExecutionProvider"]


def test_not_ready_without_an_active_model(make_settings: Callable[..., Settings], settings: Settings) -> None:
    (settings.models_dir / ACTIVE_FILENAME).unlink()
    with TestClient(create_app(make_settings()), headers={"X-API-Key": "test-admin-key"}) as c:
        r = c.get("/ready")
        assert r.status_code == 503 and r.json()["ready"] is False
        assert "no active model" in r.json()["reason"]
        r = c.post("/v1/embed", files={"image": ("a.jpg", astronaut_jpeg())})
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "model_not_ready"
        assert r.headers["retry-after"] == "5"


def test_metrics_need_a_key_and_count_requests(client: TestClient) -> None:
    client.post("/v1/embed", files={"image": ("a.jpg", astronaut_jpeg())})
    r = client.get("/metrics", headers={"X-API-Key": ""})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = client.get("/metrics", headers={"X-API-Key": "", "Authorization": "Bearer test-admin-key"})
    assert r.status_code == 200
    text = r.text
    assert 'dprime_request_latency_seconds_count{method="POST",route="/v1/embed",status="200"} 1.0' in text
    for stage in ("decode", "detect", "align", "embed", "model"):
        assert f'dprime_stage_latency_seconds_count{{stage="{stage}"}}' in text
    assert "dprime_inference_batch_size_bucket" in text and "dprime_face_kappa_count 1.0" in text
    assert 'dprime_model_active{model_id="tiny-a"} 1.0' in text


def test_request_id_is_returned_and_echoed(client: TestClient) -> None:
    assert len(client.get("/health").headers["x-request-id"]) == 32
    assert client.get("/health", headers={"x-request-id": "abc-123"}).headers["x-request-id"] == "abc-123"
    unsafe = client.get("/health", headers={"x-request-id": "bad id\n"})
    assert unsafe.headers["x-request-id"] != "bad id\n"


def test_unknown_route_and_method_use_the_envelope(client: TestClient) -> None:
    r = client.get("/v1/nope")
    assert r.status_code == 404
    assert r.json() == {"error": {"code": "not_found", "message": "no route GET /v1/nope", "details": {}}}
    r = client.get("/v1/verify")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert "x-request-id" in r.headers


def test_openapi_lists_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for p in (
        "/v1/embed",
        "/v1/verify",
        "/v1/identities",
        "/v1/identities/{identity_id}",
        "/v1/search",
        "/v1/models",
        "/v1/admin/models/{model_id}/activate",
        "/health",
        "/ready",
        "/metrics",
    ):
        assert p in paths
    assert client.get("/docs").status_code == 200
