"""`make serve`'s entry point as a real process: uvicorn on a port, a generated admin key, real HTTP."""

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx

from tests.images import astronaut_jpeg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def access_lines(log: Path, until: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The access-log lines so far, waiting for one that matches: a line is written just after its answer."""
    for _ in range(100):
        access = [json.loads(line) for line in log.read_text().splitlines() if '"service.access"' in line]
        if any(until(a) for a in access):
            return access
        time.sleep(0.05)
    raise AssertionError(log.read_text()[-3000:])


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
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        found = (re.search(r"admin key for this run: (\S+)", entry["message"]) for entry in lines)
        key = next(m.group(1) for m in found if m)
        r = httpx.post(
            f"{base}/v1/verify",
            headers={"X-API-Key": key},
            files={"image_a": ("a.jpg", astronaut_jpeg()), "image_b": ("b.jpg", astronaut_jpeg())},
        )
        assert r.status_code == 200 and r.json()["decision"] == "match"
        assert httpx.get(f"{base}/v1/models", timeout=5).status_code == 401
        access = access_lines(log, lambda a: a["route"] == "/v1/models")
        verify = next(a for a in access if a["route"] == "/v1/verify" and a["status"] == 200)
        assert verify["key_name"] == "bootstrap-admin" and verify["model_id"] == "tiny-a"
        assert verify["method"] == "POST" and verify["latency_ms"] > 0 and len(verify["request_id"]) == 32
        refused = next(a for a in access if a["route"] == "/v1/models")
        assert refused["status"] == 401 and refused["key_name"] is None
        # One line per request, and nothing of the images or embeddings in any of them.
        assert len([a for a in access if a["route"] == "/v1/verify"]) == 1
        assert "embedding" not in log.read_text()
    finally:
        proc.terminate()
        proc.wait(10)
