"""GET /v1/keys/me: the role of the key a request carries (how the console knows what to show)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.config import Settings
from service.repositories import open_stores
from tests.pg_server import both_backends

pytestmark = both_backends()


def test_each_kind_of_key_learns_its_own_role(client: TestClient, settings: Settings) -> None:
    assert client.get("/v1/keys/me").json() == {
        "role": "admin",
        "source": "bootstrap",
        "key_id": None,
        "name": None,
        "collections": None,
    }
    stores = open_stores(settings)  # what `dprime keys` opens: another process's view of the same keys
    store = stores.keys
    reader, read_key = store.create("camera-1", "read")
    admin, admin_key = store.create("ops", "admin")
    me = client.get("/v1/keys/me", headers={"X-API-Key": read_key}).json()
    assert me == {"role": "read", "source": "stored", "key_id": reader.key_id, "name": "camera-1", "collections": None}
    bearer = {"X-API-Key": "", "Authorization": f"Bearer {admin_key}"}
    assert client.get("/v1/keys/me", headers=bearer).json()["key_id"] == admin.key_id
    assert read_key not in client.get("/v1/keys/me", headers={"X-API-Key": read_key}).text
    store.revoke(reader.key_id)
    r = client.get("/v1/keys/me", headers={"X-API-Key": read_key})
    assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthorized")
    r = client.get("/v1/keys/me", headers={"X-API-Key": ""})
    assert r.json()["error"]["message"] == "missing API key: send it in the X-API-Key header"
    stores.close()


def test_the_route_is_declared(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    get = spec["paths"]["/v1/keys/me"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/KeySelf")
