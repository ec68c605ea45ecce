"""Fixtures shared across test folders: one real server with the bundled model, for the client and the console."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from facecore.registry import ModelRegistry
from tests.live_server import BUNDLED_MODELS, LiveServer, bundled_models_with_a_twin, serve
from tests.pg_server import PgTestServer, pg_test_server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgTestServer]:
    """A real PostgreSQL 16 with pgvector for the whole session (skips, saying why, when it cannot start)."""
    with pg_test_server() as server:
        if isinstance(server, str):
            pytest.skip(server)
        yield server


@pytest.fixture
def gallery_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None (the default SQLite gallery), or a fresh PostgreSQL database when parametrised with 'postgresql'."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield None
        return
    server: PgTestServer = request.getfixturevalue("pg_server")
    with server.database() as url:
        yield url


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
