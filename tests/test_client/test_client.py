"""dprime.client against a live server: every route, the API's own models back, catalogue codes as exceptions."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import httpx2 as httpx
import pytest

from dprime.api_errors import CODES, ApiError, AuthError, ConflictError, ImageError, InvalidRequest, NotFoundError
from dprime.client import DprimeClient
from service.error_catalogue import CATALOGUE
from service.keys import KeyStore
from service.schemas import AuditPage, EnrollResponse, IdentityOut, SearchResponse, SwitchJob, VerifyResponse
from tests.images import astronaut_jpeg, astronaut_variant_jpeg, no_face_png
from tests.live_server import LiveServer


@pytest.fixture
def admin(tiny_server: LiveServer) -> DprimeClient:
    return DprimeClient(tiny_server.url, tiny_server.admin_key)


def test_every_route_answers_with_the_apis_own_models(admin: DprimeClient, tiny_server: LiveServer) -> None:
    assert admin.health().status == "ok"
    ready = admin.ready()
    assert ready.ready and ready.model_id == "tiny-a"
    assert admin.me().role == "admin"
    embedded = admin.embed(astronaut_jpeg())
    assert embedded.model_id == "tiny-a" and len(embedded.faces[0].embedding) == 8

    enrolled = admin.enroll(
        "Eileen Collins", [("a.jpg", astronaut_jpeg()), ("blank.png", no_face_png())], metadata='{"crew": "STS-93"}'
    )
    assert isinstance(enrolled, EnrollResponse)
    assert [r.code for r in enrolled.rejected] == ["no_face"] and enrolled.identity.metadata == {"crew": "STS-93"}
    identity_id = enrolled.identity.id
    added = admin.add_faces(identity_id, [astronaut_variant_jpeg()])
    assert len(added.identity.faces) == 2
    page = admin.list_identities(q="eileen", limit=1)
    assert [i.id for i in page.items] == [identity_id] and page.next_cursor is None
    assert [i.name for i in admin.iter_identities(q="collins", page_size=1)] == ["Eileen Collins"]
    assert isinstance(admin.get_identity(identity_id), IdentityOut)

    pair = admin.verify(astronaut_jpeg(), astronaut_jpeg())
    assert isinstance(pair, VerifyResponse) and pair.decision == "match" and len(pair.faces) == 2
    against = admin.verify(astronaut_jpeg(), identity_id=identity_id)
    assert against.identity is not None and against.identity.faces_compared == 2
    found = admin.search(astronaut_jpeg(), k=3)
    assert isinstance(found, SearchResponse) and found.hits[0].identity_id == identity_id

    assert admin.active_model().model_id == "tiny-a"
    assert {m.model_id for m in admin.models().models} == {"tiny-a", "tiny-b"}
    assert admin.model_report("tiny-a").plots == []
    job = admin.wait_for(admin.activate("tiny-b"), timeout=120, poll=0.1)
    assert isinstance(job, SwitchJob) and (job.status, job.faces_done) == ("succeeded", 2)
    assert admin.job(job.job_id).status == "succeeded" and admin.ready().model_id == "tiny-b"
    assert admin.wait_for(admin.rollback(), timeout=120, poll=0.1).target_model_id == "tiny-a"

    report = admin.gallery_calibration()
    assert report.model_id == "tiny-a" and report.sample.faces == 2
    with pytest.raises(ConflictError) as refused:  # one person cannot resolve FAR 1e-3
        admin.adopt_calibration()
    assert refused.value.code == "calibration_unresolved" and refused.value.status == 409
    assert admin.revert_calibration().calibration_id == "manifest"
    assert "dprime_" in admin.metrics()
    assert [(c.name, c.identities, c.faces) for c in admin.collections().items] == [("default", 1, 2)]
    assert admin.delete_identity(identity_id).deleted_faces == 2
    kept = admin.enroll("Sally Ride", [astronaut_jpeg()], collection="crew")
    gone = admin.delete_collection("crew")
    assert (gone.name, gone.deleted_identities, gone.deleted_faces) == ("crew", 1, 1)
    with pytest.raises(ApiError) as missing:
        admin.get_identity(kept.identity.id)
    assert missing.value.status == 404
    trail = admin.audit(action="identity.delete")
    assert [(e.action, e.target, e.key_name) for e in trail.items] == [
        ("identity.delete", identity_id, "bootstrap-admin")
    ]
    assert isinstance(trail, AuditPage) and trail.next_cursor is None
    first = admin.audit(limit=1)
    assert (
        first.next_cursor is not None
        and admin.audit(limit=1, cursor=first.next_cursor).items[0].seq > first.items[0].seq
    )
    with pytest.raises(NotFoundError) as gone:
        admin.get_identity(identity_id)
    assert gone.value.code == "unknown_identity" and gone.value.request_id


def test_errors_carry_the_catalogue_code(admin: DprimeClient, tiny_server: LiveServer) -> None:
    with pytest.raises(ImageError) as no_face:
        admin.verify(no_face_png(), astronaut_jpeg())
    assert (no_face.value.code, no_face.value.status) == ("no_face", 422) and "no face" in no_face.value.message
    with pytest.raises(InvalidRequest) as bad:
        admin.search(astronaut_jpeg(), k=0)
    assert bad.value.code == "validation_error"
    with DprimeClient(tiny_server.url) as anonymous, pytest.raises(AuthError) as missing:
        anonymous.models()
    assert missing.value.code == "unauthorized"
    _, read_key = KeyStore(tiny_server.data_dir / "keys.sqlite3", touch_interval_s=60.0).create("reader", "read")
    with DprimeClient(tiny_server.url, read_key) as reader:
        assert reader.me().role == "read"
        with pytest.raises(AuthError) as forbidden:
            reader.enroll("X", [astronaut_jpeg()])
    assert forbidden.value.code == "forbidden" and forbidden.value.status == 403
    # Collections: a key limited to one collection is answered collection_forbidden for another.
    _, scoped_key = KeyStore(tiny_server.data_dir / "keys.sqlite3", touch_interval_s=60.0).create(
        "team-a", "read", collections=["team-a"]
    )
    enrolled = admin.enroll("In team B", [astronaut_jpeg()], collection="team-b")
    assert enrolled.identity.collection == "team-b"
    assert [h.identity_id for h in admin.search(astronaut_jpeg(), collection="team-b").hits] == [enrolled.identity.id]
    with DprimeClient(tiny_server.url, scoped_key) as scoped:
        assert scoped.search(astronaut_jpeg()).hits == []
        with pytest.raises(AuthError) as other:
            scoped.search(astronaut_jpeg(), collection="team-b")
    assert (other.value.code, other.value.status) == ("collection_forbidden", 403)


def test_every_route_of_the_openapi_has_a_client_method(tiny_server: LiveServer) -> None:
    """Each client method's docstring starts with the route it calls; together they name every operation."""
    doc = httpx.get(f"{tiny_server.url}/openapi.json", timeout=30).json()

    def shape(method: str, path: str) -> str:
        return f"{method.upper()} {re.sub(r'{[^}]+}', '{}', path)}"

    served = {shape(m, p) for p, ops in doc["paths"].items() for m in ops}
    called = set()
    for name, member in inspect.getmembers(DprimeClient, inspect.isfunction):
        route = re.match(r"(GET|POST|DELETE|PUT|PATCH) (/\S*?)[:.\s]", member.__doc__ or "")
        if route and not name.startswith("_"):
            called.add(shape(route.group(1), route.group(2)))
    assert served - called == set(), "routes without a client method"
    assert called - served == set(), "client methods for routes the service does not have"


def test_every_catalogue_code_has_an_exception_class() -> None:
    assert set(CODES) == set(CATALOGUE)


def test_an_answer_without_the_envelope_is_still_an_api_error() -> None:
    gateway = httpx.MockTransport(lambda request: httpx.Response(502, text="<html>bad gateway</html>"))
    with DprimeClient("http://proxy.invalid", "k", transport=gateway) as dp, pytest.raises(ApiError) as err:
        dp.models()
    assert (err.value.code, err.value.status) == ("http_502", 502)


def test_the_client_imports_no_part_of_the_server() -> None:
    code = (
        "import sys, dprime.client; "
        "heavy = {'fastapi', 'starlette', 'onnxruntime', 'cv2', 'faiss', 'torch', 'uvicorn'} & set(sys.modules); "
        "sys.stderr.write(' '.join(sorted(heavy))); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_from_env_reads_the_url_and_key(monkeypatch: pytest.MonkeyPatch, tiny_server: LiveServer) -> None:
    monkeypatch.setenv("DPRIME_URL", tiny_server.url)
    monkeypatch.setenv("DPRIME_API_KEY", tiny_server.admin_key)
    with DprimeClient.from_env() as dp:
        assert dp.me().source == "bootstrap"
