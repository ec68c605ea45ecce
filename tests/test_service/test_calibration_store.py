"""Gallery calibrations, versioned per model, on both backends: adopt, version again, revert to the manifest."""

from __future__ import annotations

from facecore.registry import ModelRegistry
from service.config import Settings
from service.decisions import active_decision_set
from service.repositories import open_stores
from tests.pg_server import both_backends

pytestmark = both_backends()


def test_adopted_versions_serve_until_reverted(settings: Settings) -> None:
    manifest = ModelRegistry(settings.models_dir).load("tiny-a", verify_checksum=False)
    assert manifest.calibration is not None and manifest.calibration.decision_set is not None
    base = manifest.calibration.decision_set
    stores = open_stores(settings)
    try:
        store = stores.calibrations
        assert store.active("tiny-a") is None and active_decision_set(manifest, store) == base
        first = store.adopt("tiny-a", base)
        second = store.adopt("tiny-a", base)
        assert (first.id, second.id) == ("gallery-tiny-a-v1", "gallery-tiny-a-v2") and second.source == "gallery"
        assert active_decision_set(manifest, store).id == "gallery-tiny-a-v2"
        assert store.versions("tiny-a") == ["gallery-tiny-a-v1", "gallery-tiny-a-v2"] and store.versions("x") == []
        assert store.active("tiny-b") is None
        assert store.revert("tiny-a") and not store.revert("tiny-a")
        assert store.active("tiny-a") is None and active_decision_set(manifest, store) == base
    finally:
        stores.close()
