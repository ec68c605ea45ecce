"""A real service process for tests that kill and restart it: `python -m service.devserver` on a free port, over
given models and data (tests.live_server runs uvicorn in-place for the browser and client tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx

REPO = Path(__file__).resolve().parents[1]
ADMIN_KEY = "live-admin-key"


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """One running service process."""

    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    def client(self, timeout: float = 60.0) -> httpx.Client:
        """An HTTP client with the admin key."""
        return httpx.Client(base_url=self.base, headers={"X-API-Key": ADMIN_KEY}, timeout=timeout)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int:
        """SIGTERM, then wait for the process to exit; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()
            raise


def start_server(models_dir: Path, data_dir: Path, log: Path, **env: str) -> LiveServer:
    """Start the service and wait until /ready answers 200 (raises with the log when it does not)."""
    port = free_port()
    full_env = dict(
        os.environ,
        DPRIME_MODELS_DIR=str(models_dir),
        DPRIME_DATA_DIR=str(data_dir),
        DPRIME_PORT=str(port),
        DPRIME_PROVIDERS="cpu",
        DPRIME_INTRA_OP_THREADS="1",
        DPRIME_ADMIN_KEY=ADMIN_KEY,
        DPRIME_BATCH_WAIT_MS="1",
        PYTHONPATH=str(REPO),
    )
    full_env.update(env)
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.devserver"], env=full_env, stdout=fh, stderr=fh, cwd=REPO
        )
    server = LiveServer(proc=proc, base=f"http://127.0.0.1:{port}", log=log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the service exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{server.base}/ready", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.kill()
    raise AssertionError(f"the service did not become ready:\n{log.read_text()[-4000:]}")
