"""Fixtures shared across test folders: one real server with the bundled model, for the client and the console."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from facecore.registry import ModelRegistry
from tests.live_server import BUNDLED_MODELS, LiveServer, bundled_models_with_a_twin, serve


@pytest.fixture(scope="session")
def bundled_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """uvicorn on a free port with the bundled model active (and its twin to switch to), a fresh gallery."""
    if ModelRegistry(BUNDLED_MODELS).active_id() is None:
        pytest.skip("no bundled model in models/")
    root = tmp_path_factory.mktemp("bundled-server")
    bundled_models_with_a_twin(root / "models")
    (root / "var").mkdir()
    with serve(root / "models", root / "var", "test-admin-key-bundled", root / "server.log") as server:
        yield server
