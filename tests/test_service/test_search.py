"""POST /v1/search: 1:N with calibrated decisions and an explicit unknown."""

import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app
from tests.images import astronaut_jpeg, astronaut_variant_jpeg
from tests.pg_server import both_backends
from tests.test_service.conftest import ADMIN_KEY

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


def test_a_collection_that_outgrows_exact_search_is_searched_through_its_graph(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(exact_search_max_faces=1)
    with TestClient(create_app(settings), headers={"X-API-Key": ADMIN_KEY}) as client:
        ids = {}
        for name, photo in (("A", astronaut_jpeg()), ("B", astronaut_variant_jpeg())):
            r = client.post("/v1/identities", data={"name": name}, files=[("images", ("p.jpg", photo))])
            ids[name] = r.json()["identity"]["id"]
        index = client.app.state.dprime.gallery.index  # type: ignore[attr-defined]
        index.wait_for_graphs(timeout_s=60)
        assert index._parts["default"].approximate  # two faces, past the limit of one: rebuilt as a graph
        for name, photo in (("A", astronaut_jpeg()), ("B", astronaut_variant_jpeg())):
            hits = client.post("/v1/search", files={"image": ("q.jpg", photo)}).json()["hits"]
            assert hits[0]["identity_id"] == ids[name]
        client.delete(f"/v1/identities/{ids['A']}")
        hits = client.post("/v1/search", files={"image": ("q.jpg", astronaut_jpeg())}).json()["hits"]
        assert [h["identity_id"] for h in hits] == [ids["B"]]


def test_the_graph_is_kept_on_disk_and_read_back_at_the_next_start(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(exact_search_max_faces=1)
    photos = {"A": astronaut_jpeg(), "B": astronaut_variant_jpeg()}
    with TestClient(create_app(settings), headers={"X-API-Key": ADMIN_KEY}) as client:
        ids = {}
        for name, photo in photos.items():
            r = client.post("/v1/identities", data={"name": name}, files=[("images", ("p.jpg", photo))])
            ids[name] = r.json()["identity"]["id"]
        client.app.state.dprime.gallery.index.wait_for_graphs(timeout_s=60)  # type: ignore[attr-defined]
        last_face = max(f["face_id"] for f in r.json()["identity"]["faces"])
    assert (settings.data_dir / "index" / "tiny-a" / "default.faiss").is_file()  # kept at shutdown

    with caplog.at_level(logging.INFO, logger="service.vector_index"):
        with TestClient(create_app(settings), headers={"X-API-Key": ADMIN_KEY}) as client:
            assert "graph read from disk, 0 face(s) added, 0 left out" in caplog.text
            for name, photo in photos.items():
                hits = client.post("/v1/search", files={"image": ("q.jpg", photo)}).json()["hits"]
                assert hits[0]["identity_id"] == ids[name]
            # The newest face deleted, then a new one enrolled: it gets a new id (a graph never sees an id twice).
            client.delete(f"/v1/identities/{ids['B']}")
            r = client.post("/v1/identities", data={"name": "C"}, files=[("images", ("p.jpg", photos["B"]))])
            assert min(f["face_id"] for f in r.json()["identity"]["faces"]) > last_face
            hits = client.post("/v1/search", files={"image": ("q.jpg", photos["B"])}).json()["hits"]
            assert hits[0]["identity_id"] == r.json()["identity"]["id"]
