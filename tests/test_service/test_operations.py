"""Operations with a real process: load is shed at capacity with 503 + Retry-After, slow bodies time out, SIGTERM
finishes the requests in flight, and the gallery is backed up while it takes writes and restored whole."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from dprime.cli import main
from tests.images import astronaut_jpeg, astronaut_variant_jpeg
from tests.service_process import LiveServer, start_server

# The bound on how long a shed request waits for its 503, measured by the service itself (the access line).
SHED_ANSWER_MS = 50.0
# 20 photos per enrollment: long enough (detection of each) to still be running when the test acts.
SLOW_ENROLL = [("images", (f"{i}.jpg", astronaut_jpeg() if i % 2 else astronaut_variant_jpeg())) for i in range(20)]


def in_flight(server: LiveServer) -> int:
    with server.client() as c:
        text = c.get("/metrics").text
    line = next(x for x in text.splitlines() if x.startswith("dprime_requests_in_flight "))
    return int(float(line.split()[1]))


def access_line(server: LiveServer, request_id: str) -> dict[str, Any]:
    """The access-log line of one request (it is written just after the answer, so wait for it)."""
    for _ in range(200):
        for line in server.log.read_text().splitlines():
            if '"service.access"' in line and f'"{request_id}"' in line:
                entry: dict[str, Any] = json.loads(line)
                if entry.get("request_id") == request_id:
                    return entry
        time.sleep(0.05)
    raise AssertionError(f"no access line for {request_id}:\n{server.log.read_text()[-3000:]}")


def wait_in_flight(server: LiveServer, n: int) -> None:
    for _ in range(600):
        if in_flight(server) >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"never {n} requests in flight")


def slow_enrollments(server: LiveServer, n: int) -> tuple[list[threading.Thread], list[int]]:
    statuses: list[int] = []

    def one(i: int) -> None:
        with server.client(timeout=120) as c:
            statuses.append(c.post("/v1/identities", data={"name": f"slow{i}"}, files=SLOW_ENROLL).status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads, statuses


def test_past_capacity_requests_get_503_with_retry_after_and_monitoring_still_answers(
    models_dir: Path, tmp_path: Path
) -> None:
    server = start_server(
        models_dir, tmp_path / "var", tmp_path / "log", DPRIME_MAX_IN_FLIGHT="1", DPRIME_OVERLOAD_RETRY_AFTER_S="2"
    )
    try:
        threads, statuses = slow_enrollments(server, 1)
        wait_in_flight(server, 1)
        with server.client() as c:
            files = {"image_a": ("a.jpg", astronaut_jpeg()), "image_b": ("b", astronaut_jpeg())}
            r = c.post("/v1/verify", files=files, headers={"x-request-id": "shed-1"})
            assert (r.status_code, r.json()["error"]["code"]) == (503, "overloaded")
            assert r.headers["retry-after"] == "2" and r.json()["error"]["details"] == {"in_flight": 1, "capacity": 1}
            assert r.headers["x-request-id"]
            assert c.get("/health").status_code == 200 and c.get("/ready").status_code == 200
        shed = access_line(server, "shed-1")
        assert shed["status"] == 503 and shed["latency_ms"] < SHED_ANSWER_MS, shed
        for t in threads:
            t.join()
        assert statuses == [201]
        with server.client() as c:  # capacity is free again
            assert c.get("/v1/models").status_code == 200
            assert "dprime_requests_shed 1.0" in c.get("/metrics").text
    finally:
        server.stop()


def read_answer(s: socket.socket) -> str:
    """One whole HTTP answer (headers, then Content-Length bytes of body) from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536) or b"EOF"
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode("latin-1")


def test_slow_and_oversized_bodies_are_cut_off(models_dir: Path, tmp_path: Path) -> None:
    server = start_server(
        models_dir,
        tmp_path / "var",
        tmp_path / "log",
        DPRIME_REQUEST_DEADLINE_S="1",
        DPRIME_MAX_IMAGE_BYTES="100000",
        DPRIME_MAX_IMAGES_PER_REQUEST="1",
    )
    try:
        # A body that keeps arriving past the deadline: 408.
        host, port = server.base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as s:
            head = (
                "POST /v1/embed HTTP/1.1\r\nHost: x\r\nX-API-Key: live-admin-key\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n"
            )
            s.sendall(head.encode())  # and then nothing more
            answer = read_answer(s)
        assert answer.startswith("HTTP/1.1 408") and '"request_timeout"' in answer

        # A chunked body over the limit: no Content-Length to refuse up front, so it is counted as it streams.
        def chunks():  # type: ignore[no-untyped-def]
            yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="x"\r\n\r\n'
            for _ in range(400):  # 4 MB
                yield b"\0" * 10_000

        with server.client() as c:
            r = c.post("/v1/embed", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
        assert (r.status_code, r.json()["error"]["code"]) == (413, "image_too_large")
    finally:
        server.stop()


def test_sigterm_finishes_the_requests_in_flight(models_dir: Path, tmp_path: Path) -> None:
    server = start_server(models_dir, tmp_path / "var", tmp_path / "log")
    threads, statuses = slow_enrollments(server, 3)
    wait_in_flight(server, 3)
    server.proc.send_signal(15)
    for t in threads:
        t.join(120)
    assert statuses == [201, 201, 201]
    # uvicorn re-raises the SIGTERM it handled once shutdown is complete, so the exit reads as that signal.
    assert server.proc.wait(60) in (0, -15)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.base}/health", timeout=2)
    conn = sqlite3.connect(tmp_path / "var" / "gallery.sqlite3")
    assert conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0] == 60
    conn.close()
    log = (tmp_path / "log").read_text()
    assert "Waiting for connections to close" in log and "Application shutdown complete" in log


def test_backup_while_writing_and_restore(models_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "var"
    server = start_server(models_dir, data, tmp_path / "log")
    stop = threading.Event()
    acked: list[str] = []

    def writer() -> None:
        with server.client() as c:
            i = 0
            while not stop.is_set():
                files = [("images", ("a.jpg", astronaut_jpeg())), ("images", ("b.jpg", astronaut_variant_jpeg()))]
                r = c.post("/v1/identities", data={"name": f"w{i}"}, files=files)
                assert r.status_code == 201
                acked.append(r.json()["identity"]["id"])
                i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        while len(acked) < 3:
            time.sleep(0.05)
        before = len(acked)
        assert main(["gallery", "--data-dir", str(data), "backup", str(tmp_path / "backup")]) == 0
        after = len(acked)
        time.sleep(0.3)
        # A running service holds the data directory: restoring under it is refused.
        assert main(["gallery", "--data-dir", str(data), "restore", str(tmp_path / "backup")]) == 2
    finally:
        stop.set()
        t.join(60)
        server.stop()
    info = json.loads((tmp_path / "backup" / "backup.json").read_text())
    assert before <= info["identities"] <= after + 1 and info["faces"] == 2 * info["identities"]
    assert len(acked) > info["identities"]  # writes went on after the backup
    conn = sqlite3.connect(tmp_path / "backup" / "gallery.sqlite3")
    backed = [r[0] for r in conn.execute("SELECT id FROM identities ORDER BY rowid")]
    conn.close()
    assert backed == acked[: len(backed)]  # a prefix of what was acknowledged: one consistent moment

    stale_graph = data / "index" / "tiny-a" / "default.faiss"  # as a large gallery's service leaves it
    stale_graph.parent.mkdir(parents=True, exist_ok=True)
    stale_graph.write_bytes(b"graph of the gallery being replaced")
    assert main(["gallery", "--data-dir", str(data), "restore", str(tmp_path / "backup")]) == 0
    assert not (data / "index").exists()  # it described the replaced gallery: the next start builds anew
    server = start_server(models_dir, data, tmp_path / "log2")
    try:
        assert httpx.get(f"{server.base}/ready", timeout=10).json()["gallery_faces"] == info["faces"]
        with server.client() as c:
            listed = [i["id"] for i in c.get("/v1/identities", params={"limit": 500}).json()["items"]]
            assert listed == backed
            r = c.post("/v1/search", files={"image": ("q.jpg", astronaut_jpeg())}, data={"k": "1"})
            assert r.json()["hits"][0]["identity_id"] in backed
    finally:
        server.stop()
