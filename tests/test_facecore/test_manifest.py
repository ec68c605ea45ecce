"""ModelManifest round trip, schema version and checksum errors, and the registry's pointer."""

import json
from pathlib import Path

import pytest

from facecore.constants import MODEL_FILENAME
from facecore.errors import ManifestError, RegistryError
from facecore.manifest import SCHEMA_VERSION, load_manifest, save_manifest
from facecore.registry import ModelRegistry
from tests.factories import make_manifest, write_model_dir


def test_round_trip_preserves_every_field(tmp_path: Path) -> None:
    model_dir = write_model_dir(tmp_path / "m1", b"fake onnx bytes", "m1", calibrated=True)
    loaded = load_manifest(model_dir)
    original = make_manifest("m1", b"fake onnx bytes", calibrated=True)
    assert loaded.model_dump(exclude={"created"}) == original.model_dump(exclude={"created"})
    assert loaded.calibration is not None and loaded.calibration.point().name == "far_1e-3"
    assert loaded.uncertainty.quality_percentile(20.0) == pytest.approx(50.0)


def test_checksum_mismatch_fails_loudly(tmp_path: Path) -> None:
    model_dir = write_model_dir(tmp_path / "m1", b"original", "m1")
    (model_dir / MODEL_FILENAME).write_bytes(b"tampered")
    with pytest.raises(ManifestError, match="checksum mismatch .* manifest says sha256 [0-9a-f]{64}, file has"):
        load_manifest(model_dir)
    assert load_manifest(model_dir, verify_checksum=False).model_id == "m1"
    (model_dir / MODEL_FILENAME).unlink()
    with pytest.raises(ManifestError, match="has no model file"):
        load_manifest(model_dir)


def test_schema_version_and_validation_errors(tmp_path: Path) -> None:
    model_dir = write_model_dir(tmp_path / "m1", b"x", "m1")
    raw = json.loads((model_dir / "manifest.json").read_text())
    raw["schema_version"] = 99
    (model_dir / "manifest.json").write_text(json.dumps(raw))
    expected = f"has schema_version 99; this dprime reads schema_version {SCHEMA_VERSION}"
    with pytest.raises(ManifestError, match=expected):
        load_manifest(model_dir)
    raw["schema_version"] = SCHEMA_VERSION
    raw["preprocess"]["std"] = [0, 1, 1]
    (model_dir / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match="std must be > 0"):
        load_manifest(model_dir)
    (model_dir / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="is not valid JSON"):
        load_manifest(model_dir)
    with pytest.raises(ManifestError, match="no manifest at"):
        load_manifest(tmp_path / "absent")


def test_default_operating_point_must_exist(tmp_path: Path) -> None:
    m = make_manifest("m1", b"x", calibrated=True)
    data = m.model_dump(mode="json")
    data["calibration"]["default_operating_point"] = "far_1e-9"
    with pytest.raises(ValueError, match="default_operating_point 'far_1e-9' is not one of"):
        type(m).model_validate(data)


def test_registry_activate_rollback_and_errors(tmp_path: Path) -> None:
    for mid in ("a", "b"):
        write_model_dir(tmp_path / mid, mid.encode(), mid)
    reg = ModelRegistry(tmp_path)
    assert reg.active_id() is None and reg.model_ids() == ["a", "b"]
    reg.activate("a")
    reg.activate("b")
    assert reg.active_id() == "b" and reg.pointer().history == ["a"]
    assert [s.active for s in reg.list()] == [False, True]
    assert reg.rollback().active == "a"
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        reg.rollback()
    with pytest.raises(RegistryError, match=r"no model 'zz' in .*; have \['a', 'b'\]"):
        reg.activate("zz")
    with pytest.raises(RegistryError, match="invalid model id '../etc'"):
        reg.activate("../etc")
    (tmp_path / "b" / MODEL_FILENAME).write_bytes(b"tampered")
    with pytest.raises(ManifestError, match="checksum mismatch"):
        reg.activate("b")
    assert reg.active_id() == "a"  # a refused activation leaves the pointer alone
    save_manifest(make_manifest("other", b"b"), tmp_path / "b")
    (tmp_path / "b" / MODEL_FILENAME).write_bytes(b"b")
    with pytest.raises(ManifestError, match="directory 'b' holds a manifest for 'other'"):
        reg.activate("b")
