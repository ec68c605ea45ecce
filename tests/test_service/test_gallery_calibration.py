"""Calibration in the user's own domain, on both gallery backends: real people enrolled through the API, the
gallery report, a refused adoption that changes nothing, an adopted one that decisions then name, the revert, and
the same adoption from the command line (`dprime calibrate --gallery`) while the service runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dprime.cli import main
from facecore.registry import ModelRegistry
from service.config import Settings
from service.main import create_app
from tests.data import require
from tests.pg_server import PgTestServer

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"
PEOPLE = 100
PHOTOS = 4

pytestmark = pytest.mark.data


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The service's settings over a fresh gallery of each backend."""
    if ModelRegistry(MODELS).active_id() is None:
        pytest.skip("no bundled model")
    values: dict[str, object] = {
        "data_dir": tmp_path_factory.mktemp("var"),
        "models_dir": MODELS,
        "admin_key": "k",
        "providers": "cpu",
        "calibration_n_boot": 50,
    }
    if request.param == "sqlite":
        yield Settings(_env_file=None, **values)  # type: ignore[arg-type]
        return
    server: PgTestServer = request.getfixturevalue("pg_server")
    with server.database() as url:
        yield Settings(_env_file=None, gallery_url=url, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
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


def test_the_command_line_adopts_a_gallery_calibration_the_running_service_then_uses(
    client: TestClient, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # Runs after the test above: the same 100 people are enrolled and the manifest's calibration serves.
    args = ["calibrate", "--gallery", str(settings.data_dir), "--models-dir", str(MODELS), "--n-boot", "50"]
    if settings.gallery_url is not None:
        args += ["--gallery-url", settings.gallery_url]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["calibration_id"].endswith("-v2") and len(result["version_ids"]) == 2
    assert result["report"]["sample"]["identities"] == PEOPLE
    # The service reads the adopted calibration from the store on each decision: the next answer names it.
    assert client.get("/v1/models/active").json()["calibration"]["id"] == result["calibration_id"]
    audit = client.get("/v1/admin/audit", params={"action": "calibration.adopt"}).json()
    assert any(e["key_name"] == "cli" for e in audit["items"]), audit
    assert client.delete("/v1/admin/calibration").json()["reverted"] is True

    # A target the model has no rule for is refused with the rules it has, and nothing is adopted.
    assert main([*args, "--far", "0.5"]) == 2
    assert client.get("/v1/models/active").json()["calibration"]["id"] == "manifest"
