"""The bundled default model behind the service: it loads as `make serve` would and decides on real photos."""

import json
from pathlib import Path

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
    assert manifest.calibration is not None and manifest.calibration.default_operating_point == "far_1e-3"
    assert manifest.uncertainty.kappa_trained and manifest.uncertainty.kappa_min is not None
    assert (MODELS / active / "model.onnx").stat().st_size <= 100 * 1024 * 1024
    assert {e.benchmark.split("[")[0] for e in manifest.evaluation} == {
        "lfw:pairs_dev.txt",
        "cfp:pairs_ff.tsv",
        "cfp:pairs_fp.tsv",
    }


def test_same_photo_matches(client: TestClient) -> None:
    body = client.post(
        "/v1/verify", files={"image_a": ("a.jpg", astronaut_jpeg()), "image_b": ("b.jpg", astronaut_variant_jpeg())}
    ).json()
    assert body["decision"] == "match" and body["operating_point"]["name"] == "far_1e-3"


def _confident_pairs(data: Path, names: list[str]) -> tuple[Path, Path, Path]:
    people = [n for n in names if len(list((data / n).glob("*.jpg"))) >= 2]
    a, b = sorted((data / people[0]).glob("*.jpg"))[:2]
    return a, b, sorted((data / people[1]).glob("*.jpg"))[0]


@pytest.mark.data
def test_real_photos_of_one_person_match_and_of_two_people_do_not(client: TestClient) -> None:
    lfw = require("lfw_dev")
    active = ModelRegistry(MODELS).active_id()
    record = json.loads((MODELS / str(active) / "run" / "record.json").read_text())
    kappa_min = load_manifest(MODELS / str(active)).uncertainty.kappa_min or 0.0

    def verify(x: Path, y: Path) -> dict:  # type: ignore[type-arg]
        r = client.post("/v1/verify", files={"image_a": (x.name, x.read_bytes()), "image_b": (y.name, y.read_bytes())})
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    # Held-out people only (never trained or calibrated on), and faces the model is sure about.
    people = [n for n in record["splits"]["check_lfw"] if len(list((lfw / n).glob("*.jpg"))) >= 2]
    matched = non_matched = 0
    for first, second in zip(people[:12], people[1:13], strict=True):
        a, b = sorted((lfw / first).glob("*.jpg"))[:2]
        c = sorted((lfw / second).glob("*.jpg"))[0]
        same, other = verify(a, b), verify(a, c)
        if min(f["kappa"] for f in same["faces"]) >= kappa_min:
            assert same["decision"] in ("match", "non_match")
            matched += same["decision"] == "match"
        if min(f["kappa"] for f in other["faces"]) >= kappa_min:
            assert other["decision"] == "non_match", other
            non_matched += 1
    assert matched >= 6 and non_matched >= 6
