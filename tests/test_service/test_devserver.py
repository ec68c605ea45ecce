"""`make serve`'s entry point as a real process: uvicorn on a port, a generated admin key, real HTTP."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx

from tests.images import astronaut_jpeg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_devserver_serves_the_active_model(models_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    env = dict(
        os.environ,
        DPRIME_MODELS_DIR=str(models_dir),
        DPRIME_DATA_DIR=str(tmp_path / "var"),
        DPRIME_PORT=str(port),
        DPRIME_PROVIDERS="cpu",
    )
    env.pop("DPRIME_ADMIN_KEY", None)
    log = tmp_path / "server.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "service.devserver"], env=env, stdout=fh, stderr=fh)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError(log.read_text())
        key = re.search(r"admin key for this run: (\S+)", log.read_text()).group(1)  # type: ignore[union-attr]
        r = httpx.post(
            f"{base}/v1/verify",
            headers={"X-API-Key": key},
            files={"image_a": ("a.jpg", astronaut_jpeg()), "image_b": ("b.jpg", astronaut_jpeg())},
        )
        assert r.status_code == 200 and r.json()["decision"] == "match"
        assert httpx.get(f"{base}/v1/models", timeout=5).status_code == 401
        text = log.read_text()
        assert "POST /v1/verify 200 latency_ms=" in text and "model_id=tiny-a" in text
    finally:
        proc.terminate()
        proc.wait(10)
