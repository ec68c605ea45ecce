"""POST /v1/search: 1:N with calibrated decisions and an explicit unknown."""

from fastapi.testclient import TestClient

from tests.images import astronaut_jpeg, astronaut_variant_jpeg
from tests.pg_server import both_backends

pytestmark = both_backends()


def test_search_ranks_identities_and_says_unknown(client: TestClient) -> None:
    r = client.post("/v1/search", files={"image": ("q.jpg", astronaut_jpeg())})
    assert r.json()["result"] == "unknown" and r.json()["hits"] == []  # empty gallery
    a = client.post("/v1/identities", data={"name": "A"}, files=[("images", ("a.jpg", astronaut_jpeg()))]).json()
    b = client.post(
        "/v1/identities", data={"name": "B"}, files=[("images", ("b.jpg", astronaut_variant_jpeg()))]
    ).json()
    r = client.post("/v1/search", files={"image": ("q.jpg", astronaut_jpeg())}, data={"k": "2"})
    body = r.json()
    assert body["result"] == "match" and [h["name"] for h in body["hits"]] == ["A", "B"]
    assert body["hits"][0]["identity_id"] == a["identity"]["id"] and body["hits"][0]["decision"] == "match"
    assert body["hits"][1]["decision"] in ("non_match", "uncertain") and body["hits"][1]["cosine"] < 0.99
    assert body["gallery_faces"] == 2 and body["threshold"] == 0.99
    assert body["fpir"] == {
        "target": 0.01,
        "fpir": 0.009,
        "gallery_size": 2,
        "calibrated_gallery_size": 10,
        "resolvable": True,
    }
    assert body["rank1_hit_rate"] == 0.9 and body["calibration"]["id"] == "manifest" and body["reason"] is None
    client.delete(f"/v1/identities/{a['identity']['id']}")
    body = client.post("/v1/search", files={"image": ("q.jpg", astronaut_jpeg())}).json()
    assert body["result"] == "unknown" and [h["name"] for h in body["hits"]] == ["B"]
    assert b["identity"]["id"] == body["hits"][0]["identity_id"]


def test_search_validates_k(client: TestClient) -> None:
    r = client.post("/v1/search", files={"image": ("q.jpg", astronaut_jpeg())}, data={"k": "0"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = client.post("/v1/search", files={"image": ("q.jpg", astronaut_jpeg())}, data={"k": "1000"})
    assert r.json()["error"]["message"] == "k=1000 is above the limit of 100"
