"""Bad input at scale through the API: broken uploads, wrong content types, and names and metadata with control
characters, very long strings and SQL or HTML metacharacters. Every refusal is a stable 4xx code, never a 5xx,
and leaves the gallery as it was; what is accepted is stored exactly as sent."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bad_images import any_upload
from tests.images import astronaut_jpeg

# Each refusal's status, by code: part of the API.
STABLE = {
    "bad_image": 400,
    "bad_request": 400,
    "image_too_large": 413,
    "validation_error": 422,
    "no_face": 422,
    "multiple_faces": 422,
    "no_usable_faces": 422,
}
_QUIET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
FAST = settings(max_examples=40, deadline=None, suppress_health_check=_QUIET)
LONG = settings(max_examples=1000, deadline=None, suppress_health_check=_QUIET)

METACHARACTERS = ["'; DROP TABLE identities; --", '" OR 1=1 --', "<script>alert(1)</script>", "%s%n", "../../etc"]
names = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc"]), min_size=1, max_size=5),
    st.sampled_from(METACHARACTERS),
    st.text(min_size=190, max_size=5000),
)
metadata = st.one_of(
    st.none(),
    st.text(max_size=200),
    st.sampled_from(
        ["[1]", "null", "NaN", '{"a": NaN}', '{"a": Infinity}', "[" * 5000, '{"x": "' + "y" * 20000 + '"}']
    ),
    st.dictionaries(
        st.text(max_size=20), st.one_of(st.text(max_size=50), st.integers(), st.sampled_from(METACHARACTERS))
    ).map(json.dumps),
)
content_types = st.sampled_from(["image/jpeg", "text/plain", "application/json", "application/x-sh", "", "image/gif"])
filenames = st.one_of(st.text(max_size=300).filter(lambda s: "\x00" not in s), st.sampled_from(METACHARACTERS))


def counts(client: TestClient) -> tuple[int, int]:
    state = client.app.state.dprime  # type: ignore[attr-defined]
    result: tuple[int, int] = state.gallery.store.counts()
    return result


def assert_stable_refusal(r: Any) -> None:
    assert r.status_code < 500, r.text
    code = r.json()["error"]["code"]
    assert STABLE.get(code) == r.status_code, (r.status_code, r.text)
    assert r.json()["error"]["message"]


def broken_uploads_are_refused(client: TestClient, upload: bytes, content_type: str, filename: str) -> None:
    before = counts(client)
    for route, field in (("/v1/embed", "image"), ("/v1/search", "image"), ("/v1/verify", "image_a")):
        extra = {"image_b": (filename, upload, content_type)} if route == "/v1/verify" else {}
        r = client.post(route, files={field: (filename, upload, content_type), **extra})
        if r.status_code != 200:
            assert_stable_refusal(r)
    r = client.post("/v1/identities", data={"name": "x"}, files=[("images", (filename, upload, content_type))])
    if r.status_code != 201:
        assert_stable_refusal(r)
        assert counts(client) == before


def names_are_stored_exactly_or_refused(client: TestClient, name: str, meta: str | None, filename: str) -> None:
    before = counts(client)
    form = {"name": name} | ({} if meta is None else {"metadata": meta})
    r = client.post("/v1/identities", data=form, files=[("images", (filename, astronaut_jpeg(), "image/jpeg"))])
    if r.status_code != 201:
        assert_stable_refusal(r)
        assert counts(client) == before
        return
    body = r.json()
    stored = client.get(f"/v1/identities/{body['identity']['id']}").json()
    assert stored["name"] == name
    assert stored["metadata"] == (json.loads(meta) if meta else {})
    assert counts(client) == (before[0] + 1, before[1] + 1)
    assert 1 <= len(name) <= 200 and all(ord(c) >= 0x20 and ord(c) != 0x7F for c in name)


@FAST
@given(upload=any_upload, content_type=content_types, filename=filenames)
def test_broken_uploads_to_every_image_route_are_refused_with_a_stable_code(
    client: TestClient, upload: bytes, content_type: str, filename: str
) -> None:
    broken_uploads_are_refused(client, upload, content_type, filename)


@FAST
@given(name=names, meta=metadata, filename=filenames)
def test_names_and_metadata_are_stored_exactly_or_refused(
    client: TestClient, name: str, meta: str | None, filename: str
) -> None:
    names_are_stored_exactly_or_refused(client, name, meta, filename)


@pytest.mark.slow
@LONG
@given(upload=any_upload, content_type=content_types, filename=filenames)
def test_long_fuzz_of_uploads(client: TestClient, upload: bytes, content_type: str, filename: str) -> None:
    broken_uploads_are_refused(client, upload, content_type, filename)


@pytest.mark.slow
@LONG
@given(name=names, meta=metadata, filename=filenames)
def test_long_fuzz_of_names_and_metadata(client: TestClient, name: str, meta: str | None, filename: str) -> None:
    names_are_stored_exactly_or_refused(client, name, meta, filename)


def test_control_characters_in_a_name_are_refused_saying_what_was_expected(client: TestClient) -> None:
    r = client.post("/v1/identities", data={"name": "a\x1b[31mb"}, files=[("images", ("a.jpg", astronaut_jpeg()))])
    assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_error")
    assert "name" in r.json()["error"]["message"] and "pattern" in r.json()["error"]["message"]


def test_nested_and_non_json_metadata_is_refused(client: TestClient) -> None:
    for meta, expected in (("[" * 5000, "invalid JSON"), ('{"a": NaN}', "NaN is not a JSON value")):
        r = client.post(
            "/v1/identities", data={"name": "n", "metadata": meta}, files=[("images", ("a.jpg", astronaut_jpeg()))]
        )
        assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_error")
        assert expected in r.json()["error"]["message"]
    r = client.post(
        "/v1/identities",
        data={"name": "n", "metadata": json.dumps({"x": "y" * 20_000})},
        files=[("images", ("a.jpg", astronaut_jpeg()))],
    )
    assert r.status_code == 422 and "DPRIME_MAX_METADATA_BYTES" in r.json()["error"]["message"]


def test_a_json_body_where_a_form_is_expected_is_a_validation_error(client: TestClient) -> None:
    r = client.post("/v1/verify", json={"image_a": "x"})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_error")
    r = client.post("/v1/verify", content=b"--x\r\n", headers={"content-type": "multipart/form-data"})
    assert_stable_refusal(r)


def test_an_empty_rule_name_is_refused_not_taken_for_the_default(client: TestClient) -> None:
    r = client.get("/v1/admin/calibration", params={"rule": ""})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_request")
    assert "unknown operating point ''" in r.json()["error"]["message"]
