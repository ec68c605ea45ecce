"""Access: failed keys are rate-limited per client, keys expire and record their last use, the audit trail is
append-only and readable by admins, CORS is off unless configured, and security headers are on every answer."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app
from tests.images import astronaut_jpeg
from tests.pg_server import both_backends
from tests.test_service.conftest import ADMIN_KEY

pytestmark = both_backends()


def test_repeated_wrong_keys_are_refused_with_429_and_retry_after(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(auth_max_failures=3, auth_failure_window_s=600)
    with TestClient(create_app(settings)) as c:
        for _ in range(3):
            r = c.get("/v1/models", headers={"X-API-Key": "guess"})
            assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthorized")
        r = c.get("/v1/models", headers={"X-API-Key": "guess"})
        assert (r.status_code, r.json()["error"]["code"]) == (429, "too_many_failed_keys")
        assert 1 <= int(r.headers["retry-after"]) <= 600 and "3 wrong API keys" in r.json()["error"]["message"]
        # Even the right key waits: otherwise the limit would tell a guesser when it guessed right.
        assert c.get("/v1/models", headers={"X-API-Key": ADMIN_KEY}).status_code == 429
        assert c.get("/health").status_code == 200  # no key, no limit


def test_keys_expire_and_record_their_last_use(client: TestClient) -> None:
    keys = client.app.state.dprime.keys  # type: ignore[attr-defined]
    info, live = keys.create("cam", "read", datetime.now(UTC) + timedelta(days=1))
    _, dead = keys.create("old-cam", "read", datetime.now(UTC) - timedelta(seconds=1))
    assert keys.list()[-1].last_used is None
    assert client.get("/v1/models", headers={"X-API-Key": live}).status_code == 200
    r = client.get("/v1/models", headers={"X-API-Key": dead})
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]
    used = next(k for k in keys.list() if k.key_id == info.key_id)
    assert used.last_used is not None and used.expires == info.expires
    with pytest.raises(ValueError, match="time zone"):
        keys.create("naive", "read", datetime(2030, 1, 1))


def test_audit_records_who_did_what_and_cannot_be_rewritten(client: TestClient, settings: Settings) -> None:
    r = client.post(
        "/v1/identities",
        data={"name": "E"},
        files=[("images", ("a.jpg", astronaut_jpeg()))],
        headers={"x-request-id": "req-enroll"},
    )
    identity_id = r.json()["identity"]["id"]
    client.delete(f"/v1/identities/{identity_id}", headers={"x-request-id": "req-delete"})
    job = client.post("/v1/admin/models/tiny-b/activate").json()
    _, reader = client.app.state.dprime.keys.create("reader", "read")  # type: ignore[attr-defined]
    assert client.get("/v1/admin/audit", headers={"X-API-Key": reader}).status_code == 403
    for _ in range(200):
        items = client.get("/v1/admin/audit").json()["items"]
        if any(i["action"] == "model.switch" for i in items):
            break
    got = [(i["action"], i["target"], i["request_id"], i["key_name"]) for i in items[:3]]
    assert got == [
        ("identity.enroll", identity_id, "req-enroll", "bootstrap-admin"),
        ("identity.delete", identity_id, "req-delete", "bootstrap-admin"),
        ("model.activate", "tiny-b", got[2][2], "bootstrap-admin"),
    ]
    switch = next(i for i in items if i["action"] == "model.switch")
    assert switch["outcome"] == "succeeded" and switch["details"]["job_id"] == job["job_id"]
    assert "E" not in [str(v) for i in items for v in i["details"].values()]  # ids, never names
    page = client.get("/v1/admin/audit", params={"limit": 1, "action": "identity.delete"}).json()
    assert [i["action"] for i in page["items"]] == ["identity.delete"] and page["next_cursor"] is None
    if settings.gallery_url is None:
        conn = sqlite3.connect(settings.audit_path)
        for sql in ("UPDATE audit SET key_name = 'someone else'", "DELETE FROM audit"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(sql)
        conn.close()
    else:
        with psycopg.connect(settings.gallery_location.dsn, autocommit=True) as pg:
            for sql in ("UPDATE audit SET key_name = 'someone else'", "DELETE FROM audit", "TRUNCATE audit"):
                with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                    pg.execute(sql)


def test_cli_key_actions_are_audited(client: TestClient, settings: Settings) -> None:
    from dprime.cli import main

    url = ["--gallery-url", settings.gallery_url] if settings.gallery_url else []
    args = ["keys", "--data-dir", str(settings.data_dir), *url, "create", "--name", "cam", "--expires-in-days", "1"]
    assert main(args) == 0
    items = client.get("/v1/admin/audit", params={"action": "key.create"}).json()["items"]
    assert items[0]["key_name"] == "cli" and items[0]["details"]["name"] == "cam" and items[0]["details"]["expires"]
    scoped = ["keys", "--data-dir", str(settings.data_dir), *url, "create", "--name", "team-cam"]
    assert main([*scoped, "--collection", "team-a", "--collection", "team-b"]) == 0
    items = client.get("/v1/admin/audit", params={"action": "key.create"}).json()["items"]
    assert items[-1]["details"]["name"] == "team-cam" and items[-1]["details"]["collections"] == ["team-a", "team-b"]


def test_security_headers_and_no_cors_by_default(client: TestClient) -> None:
    r = client.get("/v1/models", headers={"Origin": "https://evil.example"})
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "access-control-allow-origin" not in r.headers
    assert client.get("/health").headers["x-content-type-options"] == "nosniff"


def test_cors_answers_only_configured_origins(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(cors_origins="https://console.example"))) as c:
        pre = {"Origin": "https://console.example", "Access-Control-Request-Method": "POST"}
        r = c.options("/v1/verify", headers=pre)
        assert r.headers["access-control-allow-origin"] == "https://console.example"
        r = c.options("/v1/verify", headers={**pre, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
        # A browser may read which request and which model answered.
        r = c.get("/health", headers={"Origin": "https://console.example"})
        exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
        assert {"x-request-id", "x-dprime-model"} <= exposed and r.headers["x-dprime-model"] == "tiny-a"


def test_405_lists_the_allowed_methods(client: TestClient) -> None:
    r = client.put("/v1/identities/abc")
    assert (r.status_code, r.json()["error"]["code"]) == (405, "method_not_allowed")
    assert r.headers["allow"] == "DELETE, GET, HEAD"
    assert client.request("TRACE", "/v1/models").headers["allow"] == "GET, HEAD"
