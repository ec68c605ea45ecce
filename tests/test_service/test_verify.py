"""POST /v1/verify: calibrated decisions, the uncertain outcome, and its refusals."""

from collections.abc import Callable

import numpy as np
import pytest
from fastapi.testclient import TestClient

from facecore.registry import ModelRegistry
from facecore.vmf import expected_cosine, log_expected_likelihood, mean_resultant_length
from service.config import Settings
from service.main import create_app
from tests.factories import write_tiny_model
from tests.images import astronaut_jpeg, astronaut_variant_jpeg, no_face_png, two_faces_jpeg
from tests.pg_server import both_backends
from tests.test_service.conftest import ADMIN_KEY

pytestmark = both_backends()


def verify(client: TestClient, a: bytes, b: bytes | None = None, **form: str):  # type: ignore[no-untyped-def]
    files = {"image_a": ("a.jpg", a)}
    if b is not None:
        files["image_b"] = ("b.jpg", b)
    return client.post("/v1/verify", files=files, data=form)


def test_same_photo_matches_with_its_calibration(client: TestClient) -> None:
    r = verify(client, astronaut_jpeg(), astronaut_jpeg())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"] == "match" and body["cosine"] == pytest.approx(1.0, abs=1e-5)
    assert body["threshold"] == 0.99 and body["model_id"] == "tiny-a"
    assert body["operating_point"] == {
        "name": "far_1e-3",
        "target_far": 1e-3,
        "far": 9e-4,
        "frr": 0.02,
        "threshold": 0.99,
        "calibration_set": "synthetic",
    }
    assert body["thresholds"] == {"accept": 0.99, "reject": pytest.approx(0.79)} and body["reason"] is None
    assert body["band"]["name"] in ("q1", "q2") and body["band"]["fallback"] is False
    assert body["band"]["target_far"] == 1e-3 and body["band"]["miss_bound"] == 0.02
    assert body["calibration"] == {"id": "manifest", "source": "manifest", "name": "synthetic"}
    assert body["pair_quality"] == min(f["kappa"] for f in body["faces"])
    assert body["log10_lr"] == pytest.approx(10.0 * body["cosine"] - 10.0 * (0.99 + 0.79) / 2)
    ka, kb = body["faces"][0]["kappa"], body["faces"][1]["kappa"]
    assert body["expected_cosine"] == pytest.approx(float(expected_cosine(body["cosine"], ka, kb, 8)), rel=1e-6)
    assert body["log_expected_likelihood"] == pytest.approx(
        float(log_expected_likelihood(body["cosine"], ka, kb, 8)), rel=1e-6
    )
    assert body["faces"][0]["mean_resultant"] == pytest.approx(float(mean_resultant_length(ka, 8)), rel=1e-6)


def test_different_photos_and_another_rule_can_be_chosen(client: TestClient) -> None:
    r = verify(client, astronaut_jpeg(), astronaut_variant_jpeg())
    body = r.json()
    assert body["cosine"] < 0.99 and body["decision"] == ("non_match" if body["cosine"] < 0.79 else "uncertain")
    r = verify(client, astronaut_jpeg(), astronaut_variant_jpeg(), operating_point="far_1e-2")
    body = r.json()
    assert body["threshold"] == 0.25 and body["operating_point"]["name"] == "far_1e-2"
    cos = body["cosine"]
    assert body["decision"] == ("match" if cos >= 0.25 else "non_match" if cos < 0.1 else "uncertain")
    r = verify(client, astronaut_jpeg(), astronaut_jpeg(), operating_point="far_1e-9")
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    assert r.json()["error"]["details"]["available"] == ["far_1e-3", "far_1e-2"]


def test_a_score_between_the_thresholds_is_uncertain_and_says_why(
    make_settings: Callable[..., Settings],
    models_dir,  # type: ignore[no-untyped-def]
) -> None:
    write_tiny_model(models_dir, "strict", calibrated=True, threshold=1.01, reject=0.5)
    ModelRegistry(models_dir).activate("strict")
    with TestClient(create_app(make_settings()), headers={"X-API-Key": ADMIN_KEY}) as c:
        body = verify(c, astronaut_jpeg(), astronaut_jpeg()).json()
        assert body["decision"] == "uncertain" and body["thresholds"] == {"accept": 1.01, "reject": 0.5}
        assert "between the reject threshold 0.5000 and the accept threshold 1.0100" in body["reason"]


def test_uncalibrated_model_refuses_to_decide(make_settings: Callable[..., Settings], models_dir) -> None:  # type: ignore[no-untyped-def]
    write_tiny_model(models_dir, "raw", calibrated=False)
    ModelRegistry(models_dir).activate("raw")
    with TestClient(create_app(make_settings()), headers={"X-API-Key": ADMIN_KEY}) as c:
        r = verify(c, astronaut_jpeg(), astronaut_jpeg())
        assert (r.status_code, r.json()["error"]["code"]) == (409, "model_not_calibrated")
        assert "run `dprime calibrate models/raw" in r.json()["error"]["message"]
        assert c.post("/v1/embed", files={"image": ("a.jpg", astronaut_jpeg())}).status_code == 200


def test_request_shape_errors(client: TestClient) -> None:
    r = verify(client, astronaut_jpeg())
    assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_error")
    assert r.json()["error"]["message"] == "send exactly one of image_b or identity_id with image_a"
    r = verify(client, astronaut_jpeg(), astronaut_jpeg(), identity_id="x")
    assert r.status_code == 422
    r = verify(client, astronaut_jpeg(), no_face_png())
    assert (r.status_code, r.json()["error"]["code"]) == (422, "no_face")
    r = verify(client, astronaut_jpeg(), two_faces_jpeg(), multiple_faces="error")
    assert r.json()["error"]["code"] == "multiple_faces"
    r = verify(client, astronaut_jpeg(), identity_id="no-such-id")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_identity")


def test_verify_against_an_enrolled_identity(client: TestClient) -> None:
    enrolled = client.post(
        "/v1/identities",
        data={"name": "Eileen"},
        files=[("images", ("a.jpg", astronaut_jpeg())), ("images", ("b.jpg", astronaut_variant_jpeg()))],
    )
    assert enrolled.status_code == 201, enrolled.text
    identity = enrolled.json()["identity"]
    r = verify(client, astronaut_jpeg(), identity_id=identity["id"])
    body = r.json()
    assert body["decision"] == "match" and body["cosine"] == pytest.approx(1.0, abs=1e-5)
    ref = body["identity"]
    assert ref["name"] == "Eileen" and ref["faces_compared"] == 2
    assert ref["best_face_id"] == identity["faces"][0]["face_id"]
    assert ref["far_bound"] == pytest.approx(2 * 1e-3)
    assert np.isfinite(body["expected_cosine"])
