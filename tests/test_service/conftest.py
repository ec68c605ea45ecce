"""Service fixtures: a models directory with tiny real ONNX models, settings, and a live TestClient."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facecore.registry import ModelRegistry
from service.config import Settings
from service.main import create_app
from tests.factories import write_tiny_model

ADMIN_KEY = "test-admin-key"


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """models/ with 'tiny-a' (8-d, calibrated, active) and 'tiny-b' (16-d, calibrated)."""
    root = tmp_path / "models"
    write_tiny_model(root, "tiny-a", dim=8, seed=0, calibrated=True, threshold=0.99)
    write_tiny_model(root, "tiny-b", dim=16, seed=1, calibrated=True, threshold=0.99)
    ModelRegistry(root).activate("tiny-a")
    return root


@pytest.fixture
def make_settings(tmp_path: Path, models_dir: Path, gallery_url: str | None) -> Callable[..., Settings]:
    """Settings over the temporary models and data dirs (and the gallery backend under test), with overrides."""

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "data_dir": tmp_path / "var",
            "models_dir": models_dir,
            "admin_key": ADMIN_KEY,
            "providers": "cpu",
            "batch_wait_ms": 1.0,
            "intra_op_threads": 1,
            "gallery_url": gallery_url,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Default test settings."""
    return make_settings()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client with the lifespan running and the admin key set."""
    with TestClient(create_app(settings), headers={"X-API-Key": ADMIN_KEY}) as c:
        yield c
