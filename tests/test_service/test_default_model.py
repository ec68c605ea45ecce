"""The bundled default model behind the service: it loads as `make serve` would and decides on real photos."""

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from facecore.manifest import load_manifest
from facecore.registry import ModelRegistry
from service.config import Settings
from service.main import create_app
from tests.data import require
from tests.images import astronaut_jpeg, astronaut_variant_jpeg

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if ModelRegistry(MODELS).active_id() is None:
        pytest.skip("no bundled model")
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("var"),
        models_dir=MODELS,  # type: ignore[call-arg]
        admin_key="k",
        providers="cpu",
    )
    with TestClient(create_app(settings), headers={"X-API-Key": "k"}) as c:
        yield c


def test_bundled_model_is_active_calibrated_and_intact() -> None:
    active = ModelRegistry(MODELS).active_id()
    assert active is not None
    manifest = load_manifest(MODELS / active)  # sha256 verified
    cal = manifest.calibration
    assert cal is not None and cal.default_operating_point == "far_1e-3" and cal.decision_set is not None
    rule = cal.decision_set.decision()
    assert rule.target_far == 1e-3 and rule.miss_bound == 0.02 and rule.overall.far_interval[1] <= 1e-3
    assert cal.decision_set.identification is not None and cal.decision_set.identification.target_fpir == 0.01
    assert manifest.detector is not None and manifest.detector.kind == "retinaface"
    assert manifest.uncertainty.kappa_trained and manifest.uncertainty.enroll_rule
    assert (MODELS / active / "model.onnx").stat().st_size <= 100 * 1024 * 1024
    assert {e.benchmark.split("[")[0] for e in manifest.evaluation} == {
        "lfw:pairs_dev.txt",
        "cfp:pairs_ff.tsv",
        "cfp:pairs_fp.tsv",
        "cfp:lowres_pairs.tsv",
    }


def test_same_photo_matches_and_the_service_runs_the_calibrated_detector(client: TestClient) -> None:
    body = client.post(
        "/v1/verify", files={"image_a": ("a.jpg", astronaut_jpeg()), "image_b": ("b.jpg", astronaut_variant_jpeg())}
    ).json()
    assert body["decision"] == "match" and body["operating_point"]["name"] == "far_1e-3"
    assert body["calibration"]["source"] == "manifest" and body["log10_lr"] > 0
    detector = client.get("/v1/models/active").json()["detector"]
    assert detector["overridden"] is False and detector["in_use"] == detector["calibrated_with"]


def test_a_detector_setting_is_reported_as_an_override(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    if ModelRegistry(MODELS).active_id() is None:
        pytest.skip("no bundled model")
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        models_dir=MODELS,  # type: ignore[call-arg]
        admin_key="k",
        providers="cpu",
        det_score_threshold=0.5,
        warmup=False,
    )
    with TestClient(create_app(settings), headers={"X-API-Key": "k"}) as c:
        detector = c.get("/v1/models/active").json()["detector"]
    assert detector["overridden"] is True and detector["in_use"]["score_threshold"] == 0.5
    assert detector["calibrated_with"]["score_threshold"] != 0.5
    assert "detector overridden by settings" in caplog.text


@pytest.mark.data
def test_calibration_and_the_service_embed_a_photo_identically(client: TestClient) -> None:
    """One face path: the embedding calibration measures is the one /v1/embed returns."""
    from training.calibrate import embed_for_calibration

    lfw = require("lfw_dev")
    photo = sorted((lfw / "Ai_Sugiyama").glob("*.jpg"))[0]
    active = str(ModelRegistry(MODELS).active_id())
    manifest = load_manifest(MODELS / active)
    assert manifest.detector is not None
    from facepipe.detectors import spec_for_record

    (offline,) = embed_for_calibration(MODELS / active, [photo], False, spec_for_record(manifest.detector), None, 1)
    body = client.post("/v1/embed", files={"image": (photo.name, photo.read_bytes())}).json()
    served = np.asarray(body["faces"][0]["embedding"])
    assert np.abs(served - offline).max() < 1e-5 * max(1.0, float(np.abs(offline).max()))


@pytest.mark.data
def test_real_photos_of_one_person_match_and_of_two_people_do_not(client: TestClient) -> None:
    lfw = require("lfw_dev")
    active = ModelRegistry(MODELS).active_id()
    record = json.loads((MODELS / str(active) / "run" / "record.json").read_text())

    def verify(x: Path, y: Path) -> dict:  # type: ignore[type-arg]
        r = client.post("/v1/verify", files={"image_a": (x.name, x.read_bytes()), "image_b": (y.name, y.read_bytes())})
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    # Evaluated people only: never trained or calibrated on.
    people = [n for n in record["splits"]["evaluate_lfw"] if len(list((lfw / n).glob("*.jpg"))) >= 2]
    outcomes: dict[str, list[str]] = {"same": [], "other": []}
    for first, second in zip(people[:12], people[1:13], strict=True):
        a, b = sorted((lfw / first).glob("*.jpg"))[:2]
        c = sorted((lfw / second).glob("*.jpg"))[0]
        outcomes["same"].append(verify(a, b)["decision"])
        other = verify(a, c)
        assert other["decision"] != "match", other
        outcomes["other"].append(other["decision"])
    assert outcomes["same"].count("match") >= 9 and outcomes["other"].count("non_match") >= 6, outcomes
