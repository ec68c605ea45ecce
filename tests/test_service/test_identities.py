"""Enrollment with partial success, listing with cursors, deletion, roles, and restart persistence."""

from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app
from tests.images import astronaut_jpeg, astronaut_variant_jpeg, no_face_png, two_faces_jpeg
from tests.pg_server import both_backends
from tests.test_service.conftest import ADMIN_KEY

pytestmark = both_backends()


def enroll(client: TestClient, name: str, images: list[tuple[str, bytes]], **form: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/v1/identities", data={"name": name, **form}, files=[("images", (fn, data)) for fn, data in images]
    )


def test_enroll_partial_success_with_a_reason_per_rejected_image(client: TestClient) -> None:
    r = enroll(
        client,
        "Eileen",
        [
            ("good.jpg", astronaut_jpeg()),
            ("blank.png", no_face_png()),
            ("junk.bin", b"nope"),
            ("two.jpg", two_faces_jpeg()),
            ("good2.jpg", astronaut_variant_jpeg()),
        ],
        metadata='{"team": "nasa"}',
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert [a["index"] for a in body["accepted"]] == [0, 4]
    assert [(x["index"], x["filename"], x["code"]) for x in body["rejected"]] == [
        (1, "blank.png", "no_face"),
        (2, "junk.bin", "bad_image"),
        (3, "two.jpg", "multiple_faces"),
    ]
    identity = body["identity"]
    assert identity["name"] == "Eileen" and identity["metadata"] == {"team": "nasa"}
    assert len(identity["faces"]) == 2 and all(f["has_chip"] for f in identity["faces"])
    got = client.get(f"/v1/identities/{identity['id']}").json()
    assert got == identity


def test_nothing_is_stored_when_no_image_is_usable(client: TestClient) -> None:
    r = enroll(client, "Nobody", [("blank.png", no_face_png()), ("junk", b"x")])
    assert (r.status_code, r.json()["error"]["code"]) == (422, "no_usable_faces")
    assert [x["code"] for x in r.json()["error"]["details"]["rejected"]] == ["no_face", "bad_image"]
    assert client.get("/v1/identities").json() == {"items": [], "next_cursor": None}


def test_enroll_validation(client: TestClient) -> None:
    r = enroll(client, "", [("a.jpg", astronaut_jpeg())])
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = enroll(client, "X", [("a.jpg", astronaut_jpeg())], metadata="[1, 2]")
    assert r.json()["error"]["message"] == "metadata must be a JSON object, got list"
    r = client.post("/v1/identities", data={"name": "X"})
    assert r.status_code == 422 and "images" in r.json()["error"]["message"]


def test_add_faces_list_pages_and_delete(client: TestClient) -> None:
    ids = [enroll(client, f"p{i}", [("a.jpg", astronaut_jpeg())]).json()["identity"]["id"] for i in range(5)]
    r = client.post(f"/v1/identities/{ids[0]}/faces", files=[("images", ("b.jpg", astronaut_variant_jpeg()))])
    assert r.status_code == 201 and len(r.json()["identity"]["faces"]) == 2
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/identities", params=params).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    bad = client.get("/v1/identities", params={"cursor": "%%%"})
    assert bad.status_code == 422 and "cursor" in bad.json()["error"]["message"]
    r = client.delete(f"/v1/identities/{ids[0]}")
    assert r.json() == {"id": ids[0], "deleted_faces": 2}
    assert client.get(f"/v1/identities/{ids[0]}").json()["error"]["code"] == "unknown_identity"
    assert client.delete(f"/v1/identities/{ids[0]}").status_code == 404
    r = client.post(f"/v1/identities/{ids[0]}/faces", files=[("images", ("b.jpg", astronaut_jpeg()))])
    assert r.status_code == 404


def test_roles_read_key_cannot_write(client: TestClient) -> None:
    state = client.app.state.dprime  # type: ignore[attr-defined]
    _, read_key = state.keys.create("reader", "read")
    h = {"X-API-Key": read_key}
    r = client.post("/v1/identities", data={"name": "x"}, files=[("images", ("a.jpg", astronaut_jpeg()))], headers=h)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    assert r.json()["error"]["message"] == "this route needs an admin key; the key sent has role 'read'"
    assert client.get("/v1/identities", headers=h).status_code == 200
    assert client.post("/v1/admin/models/rollback", headers=h).status_code == 403
    r = client.get("/v1/identities", headers={"X-API-Key": ""})
    assert r.json()["error"]["message"] == "missing API key: send it in the X-API-Key header"


def test_enrollment_survives_a_restart(settings: Settings) -> None:
    with TestClient(create_app(settings), headers={"X-API-Key": ADMIN_KEY}) as c:
        identity_id = enroll(c, "Eileen", [("a.jpg", astronaut_jpeg())]).json()["identity"]["id"]
    with TestClient(create_app(settings), headers={"X-API-Key": ADMIN_KEY}) as c:
        r = c.post("/v1/search", files={"image": ("q.jpg", astronaut_jpeg())}, data={"k": "3"})
        body = r.json()
        assert body["result"] == "match" and body["hits"][0]["identity_id"] == identity_id
        assert body["gallery_faces"] == 1


def test_unexpected_failures_answer_500_without_internals(client: TestClient, settings: Settings) -> None:
    import sqlite3

    import psycopg

    enroll(client, "E", [("a.jpg", astronaut_jpeg())])
    # Break the gallery behind the service's back: the next read fails inside the database.
    if settings.gallery_url is None:
        with sqlite3.connect(settings.gallery_path) as conn:
            conn.execute("DROP TABLE faces")
    else:
        with psycopg.connect(settings.gallery_location.dsn, autocommit=True) as pg:
            pg.execute("DROP TABLE faces CASCADE")
    r = client.get("/v1/identities")
    assert r.status_code == 500
    body = r.json()
    assert body["error"]["code"] == "internal_error" and body["error"]["details"] == {}
    assert "sqlite" not in r.text.lower() and "psycopg" not in r.text.lower() and "Traceback" not in r.text
    assert "x-request-id" in body["error"]["message"] and r.headers["x-request-id"]


def test_the_list_searches_names_in_any_case_and_pages_within_the_search(client: TestClient) -> None:
    for name in ("José Álvarez", "JOSÉ Martí", "Ann", "josé b"):
        assert enroll(client, name, [("a.jpg", astronaut_jpeg())]).status_code == 201
    page = client.get("/v1/identities", params={"q": "josé", "limit": 2}).json()
    assert [i["name"] for i in page["items"]] == ["José Álvarez", "JOSÉ Martí"] and page["next_cursor"]
    rest = client.get("/v1/identities", params={"q": "josé", "limit": 2, "cursor": page["next_cursor"]}).json()
    assert [i["name"] for i in rest["items"]] == ["josé b"] and rest["next_cursor"] is None
    assert client.get("/v1/identities", params={"q": "ÁLV"}).json()["items"][0]["name"] == "José Álvarez"
    assert client.get("/v1/identities", params={"q": "%"}).json()["items"] == []  # no wildcard
    assert len(client.get("/v1/identities", params={"q": ""}).json()["items"]) == 4
    r = client.get("/v1/identities", params={"q": "x" * 201})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_error")
    params = {p["name"] for p in client.get("/openapi.json").json()["paths"]["/v1/identities"]["get"]["parameters"]}
    assert params == {"limit", "cursor", "q", "collection"}
