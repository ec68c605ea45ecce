"""Calibration in the user's own domain: real people enrolled through the API, the gallery report, a refused
adoption that changes nothing, an adopted one that decisions then name, and the revert."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facecore.registry import ModelRegistry
from service.config import Settings
from service.main import create_app
from tests.data import require

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"
PEOPLE = 100
PHOTOS = 4

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    if ModelRegistry(MODELS).active_id() is None:
        pytest.skip("no bundled model")
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("var"),
        models_dir=MODELS,  # type: ignore[call-arg]
        admin_key="k",
        providers="cpu",
        calibration_n_boot=50,
    )
    with TestClient(create_app(settings), headers={"X-API-Key": "k"}) as c:
        yield c


def enroll(client: TestClient, person: Path) -> None:
    photos = sorted(person.glob("frontal_*.jpg"))[:PHOTOS]
    files = [("images", (p.name, p.read_bytes())) for p in photos]
    r = client.post("/v1/identities", data={"name": person.name}, files=files)
    assert r.status_code == 201, r.text


def test_gallery_calibration_report_refusal_adoption_and_revert(client: TestClient) -> None:
    cfp = require("cfp_dev")
    people = sorted(p for p in cfp.iterdir() if p.is_dir())[:PEOPLE]
    for person in people[:10]:
        enroll(client, person)
    before = client.get("/v1/models/active").json()["calibration"]
    refused = client.post("/v1/admin/calibration")
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "calibration_unresolved" and error["details"]["identities_needed"] > 10
    assert "people are needed" in error["message"]
    assert client.get("/v1/models/active").json()["calibration"] == before and before["source"] == "manifest"

    for person in people[10:]:
        enroll(client, person)
    report = client.get("/v1/admin/calibration").json()
    assert report["sample"]["identities"] == PEOPLE and report["calibration_id"] == "manifest"
    assert report["sample"]["genuine_pairs"] >= PEOPLE * 5 and report["sample"]["impostor_pairs"] > 10_000
    measured = [b for b in report["bands"] if b["observed_far"] is not None]
    assert measured and all(0.0 <= b["observed_far"] <= 1.0 for b in measured)
    assert report["holds"] in (True, False)

    adopted = client.post("/v1/admin/calibration")
    assert adopted.status_code == 201, adopted.text
    body = adopted.json()
    new_id = body["calibration_id"]
    assert new_id.startswith("gallery-") and body["rule"]["overall"]["far_interval"][1] <= 1e-3
    assert body["identification_from"] == "manifest"  # 400 faces cannot resolve FPIR 1 %: the manifest's stays
    probe = sorted(people[0].glob("frontal_*.jpg"))[-1]
    other = sorted(people[1].glob("frontal_*.jpg"))[-1]
    files = {"image_a": (probe.name, probe.read_bytes()), "image_b": (other.name, other.read_bytes())}
    decided = client.post("/v1/verify", files=files).json()
    assert decided["calibration"] == {
        "id": new_id,
        "source": "gallery",
        "name": body["rule"] and decided["calibration"]["name"],
    }
    assert decided["calibration"]["name"].startswith("gallery:")
    assert client.get("/v1/models/active").json()["calibration"]["id"] == new_id

    reverted = client.delete("/v1/admin/calibration")
    assert reverted.status_code == 200 and reverted.json()["reverted"] is True
    assert client.post("/v1/verify", files=files).json()["calibration"]["id"] == "manifest"
    assert client.delete("/v1/admin/calibration").json()["reverted"] is False
