"""A real uvicorn server over two tiny real ONNX models, for the client and the command line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from facecore.registry import ModelRegistry
from tests.factories import write_tiny_model
from tests.live_server import LiveServer, serve


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Serving 'tiny-a' (active) with 'tiny-b' to switch to, a fresh gallery and the admin key 'client-admin'."""
    root = tmp_path_factory.mktemp("tiny-server")
    write_tiny_model(root / "models", "tiny-a", dim=8, seed=0, calibrated=True, threshold=0.99)
    write_tiny_model(root / "models", "tiny-b", dim=16, seed=1, calibrated=True, threshold=0.99)
    ModelRegistry(root / "models").activate("tiny-a")
    (root / "var").mkdir()
    with serve(root / "models", root / "var", "client-admin", root / "server.log") as server:
        yield server
