"""Collections: identities live in named collections, keys may be limited to some, reads see only theirs (403 with
collection_forbidden for the others), and a collection can be deleted whole, erased like single identities."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.config import Settings
from service.repositories import open_stores
from tests.images import astronaut_jpeg, astronaut_variant_jpeg
from tests.pg_server import both_backends
from tests.test_service.test_erasure import on_disk, pieces, share_found, stored_bytes

pytestmark = both_backends()


def enroll(client: TestClient, name: str, photo: bytes, collection: str | None = None, **headers: str) -> str:
    data = {"name": name} | ({"collection": collection} if collection else {})
    r = client.post("/v1/identities", data=data, files=[("images", ("a.jpg", photo))], headers=headers)
    assert r.status_code == 201, r.text
    identity_id: str = r.json()["identity"]["id"]
    return identity_id


def make_key(settings: Settings, role: str, collections: list[str] | None) -> str:
    stores = open_stores(settings)  # as `dprime keys create --collection ...` does
    try:
        _, key = stores.keys.create("scoped", role, collections=collections)  # type: ignore[arg-type]
    finally:
        stores.close()
    return key


def search(client: TestClient, key: str | None = None, **form: str):  # type: ignore[no-untyped-def]
    headers = {"X-API-Key": key} if key else {}
    return client.post("/v1/search", data=form, files={"image": ("q.jpg", astronaut_jpeg())}, headers=headers)


def test_identities_land_in_default_unless_a_collection_is_given(client: TestClient) -> None:
    plain = enroll(client, "Plain", astronaut_jpeg())
    placed = enroll(client, "Placed", astronaut_variant_jpeg(), "team-a")
    assert client.get(f"/v1/identities/{plain}").json()["collection"] == "default"
    assert client.get(f"/v1/identities/{placed}").json()["collection"] == "team-a"
    got = client.get("/v1/collections").json()["items"]
    assert got == [
        {"name": "default", "identities": 1, "faces": 1},
        {"name": "team-a", "identities": 1, "faces": 1},
    ]
    r = client.post(
        "/v1/identities", data={"name": "X", "collection": "Bad Name"}, files=[("images", ("a.jpg", astronaut_jpeg()))]
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_error")


def test_a_scoped_key_sees_only_its_collections(client: TestClient, settings: Settings) -> None:
    mine = enroll(client, "Mine", astronaut_jpeg(), "team-a")
    theirs = enroll(client, "Theirs", astronaut_variant_jpeg(), "team-b")
    key = make_key(settings, "read", ["team-a"])
    hits = search(client, key).json()["hits"]
    assert [h["identity_id"] for h in hits] == [mine]
    assert search(client, key).json()["gallery_faces"] == 1  # the FPIR is kept for the gallery it searched
    all_hits = {h["identity_id"] for h in search(client).json()["hits"]}
    assert all_hits == {mine, theirs}  # an unscoped key sees both
    assert [h["identity_id"] for h in search(client, collection="team-b").json()["hits"]] == [theirs]
    for r in (
        search(client, key, collection="team-b"),
        client.get(f"/v1/identities/{theirs}", headers={"X-API-Key": key}),
        client.post(
            "/v1/verify",
            data={"identity_id": theirs},
            files={"image_a": ("q.jpg", astronaut_jpeg())},
            headers={"X-API-Key": key},
        ),
        client.get("/v1/identities", params={"collection": "team-b"}, headers={"X-API-Key": key}),
    ):
        assert (r.status_code, r.json()["error"]["code"]) == (403, "collection_forbidden"), r.text
        assert r.json()["error"]["details"] == {"collection": "team-b"}
    listed = client.get("/v1/identities", headers={"X-API-Key": key}).json()["items"]
    assert [i["id"] for i in listed] == [mine]
    assert [c["name"] for c in client.get("/v1/collections", headers={"X-API-Key": key}).json()["items"]] == ["team-a"]
    me = client.get("/v1/keys/me", headers={"X-API-Key": key}).json()
    assert me["collections"] == ["team-a"]
    verified = client.post(
        "/v1/verify",
        data={"identity_id": mine},
        files={"image_a": ("q.jpg", astronaut_jpeg())},
        headers={"X-API-Key": key},
    )
    assert verified.status_code == 200 and verified.json()["decision"] == "match"


def test_a_scoped_admin_key_writes_only_its_collections(client: TestClient, settings: Settings) -> None:
    key = make_key(settings, "admin", ["team-a"])
    theirs = enroll(client, "Theirs", astronaut_variant_jpeg(), "team-b")
    enroll(client, "Mine", astronaut_jpeg(), "team-a", **{"X-API-Key": key})
    r = client.post(
        "/v1/identities",
        data={"name": "X", "collection": "team-b"},
        files=[("images", ("a.jpg", astronaut_jpeg()))],
        headers={"X-API-Key": key},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (403, "collection_forbidden")
    r = client.delete(f"/v1/identities/{theirs}", headers={"X-API-Key": key})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "collection_forbidden")
    r = client.delete("/v1/collections/team-b", headers={"X-API-Key": key})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "collection_forbidden")
    assert client.get(f"/v1/identities/{theirs}").status_code == 200


def test_deleting_a_collection_removes_it_whole(client: TestClient, settings: Settings) -> None:
    gone = enroll(client, "Gone", astronaut_jpeg(), "team-a")
    kept = enroll(client, "Kept", astronaut_variant_jpeg(), "team-b")
    sqlite = settings.gallery_url is None
    erased_bytes = stored_bytes(settings, gone) if sqlite else []
    kept_bytes = stored_bytes(settings, kept) if sqlite else []
    r = client.delete("/v1/collections/team-a")
    assert r.status_code == 200 and r.json() == {"name": "team-a", "deleted_identities": 1, "deleted_faces": 1}
    assert client.get(f"/v1/identities/{gone}").json()["error"]["code"] == "unknown_identity"
    assert [h["identity_id"] for h in search(client).json()["hits"]] == [kept]
    assert search(client, collection="team-a").json()["hits"] == []
    r = client.delete("/v1/collections/team-a")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_collection")
    actions = [i["action"] for i in client.get("/v1/admin/audit").json()["items"]]
    assert "collection.delete" in actions
    if sqlite:  # the same erasure as deleting one identity: no fragment only the deleted faces had survives
        own = [p for b in erased_bytes for p in pieces(b) if not any(p in k for k in kept_bytes)]
        assert len(own) > 10 and share_found(own, on_disk(settings)) == 0
