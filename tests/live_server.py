"""A real uvicorn process serving the app on a free loopback port, for the browser and client tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx

from facecore.constants import MANIFEST_FILENAME, MODEL_FILENAME
from facecore.registry import ModelRegistry

REPO = Path(__file__).resolve().parents[1]
BUNDLED_MODELS = REPO / "models"


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class LiveServer:
    """Where a running server answers, and the files it works in."""

    url: str
    admin_key: str
    models_dir: Path
    data_dir: Path
    log: Path


def bundled_models_with_a_twin(root: Path) -> tuple[str, str]:
    """models/ under root: the bundled active model, and the same files registered under a second id.

    Both are linked, not copied (the ONNX file is large); the twin's manifest differs only in its model_id, so a
    switch between them is a real switch (another session, the gallery re-embedded from its chips).
    """
    active = ModelRegistry(BUNDLED_MODELS).active_id()
    if active is None:
        raise FileNotFoundError(f"{BUNDLED_MODELS} has no active model")
    root.mkdir(parents=True)
    (root / active).symlink_to(BUNDLED_MODELS / active, target_is_directory=True)
    twin = f"{active}-twin"
    (root / twin).mkdir()
    for name in (MODEL_FILENAME, "report"):
        if (BUNDLED_MODELS / active / name).exists():
            (root / twin / name).symlink_to(BUNDLED_MODELS / active / name)
    manifest = json.loads((BUNDLED_MODELS / active / MANIFEST_FILENAME).read_text())
    manifest["model_id"] = twin
    (root / twin / MANIFEST_FILENAME).write_text(json.dumps(manifest, indent=2))
    ModelRegistry(root).activate(active)
    return active, twin


@contextmanager
def serve(
    models_dir: Path,
    data_dir: Path,
    admin_key: str,
    log: Path,
    timeout_s: float = 120.0,
    env_extra: dict[str, str] | None = None,
) -> Iterator[LiveServer]:
    """`uvicorn --factory service.main:serve_app` on 127.0.0.1 until the block ends; waits until /ready answers 200."""
    port = free_port()
    env = dict(
        os.environ,
        DPRIME_MODELS_DIR=str(models_dir),
        DPRIME_DATA_DIR=str(data_dir),
        DPRIME_ADMIN_KEY=admin_key,
        DPRIME_PROVIDERS="cpu",
        **(env_extra or {}),
    )
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "service.main:serve_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    cmd.append("--no-access-log")  # the app logs each request itself
    url = f"http://127.0.0.1:{port}"
    with open(log, "w") as fh:
        # cwd: the data dir, so that no .env of the developer's checkout changes the settings.
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=data_dir.parent)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not ready after {timeout_s} s:\n{log.read_text()}")
            time.sleep(0.2)
        yield LiveServer(url=url, admin_key=admin_key, models_dir=models_dir, data_dir=data_dir, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
