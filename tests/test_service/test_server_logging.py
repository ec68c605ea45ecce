"""The server as deployed (`uvicorn --factory service.main:serve_app`, as in the Dockerfile and compose) writes its
log as the settings say: one JSON object a line, with an access line per request that names the request."""

from __future__ import annotations

import json
import time

import httpx2 as httpx

from tests.live_server import LiveServer


def _access_lines(server: LiveServer, request_id: str) -> list[dict[str, object]]:
    lines = []
    for text in server.log.read_text().splitlines():
        if text.startswith("{"):
            line = json.loads(text)
            if line.get("logger") == "service.access" and line.get("request_id") == request_id:
                lines.append(line)
    return lines


def test_the_deployed_entry_point_logs_one_json_access_line_per_request(bundled_server: LiveServer) -> None:
    request_id = f"log-check-{time.monotonic_ns()}"
    r = httpx.get(
        f"{bundled_server.url}/v1/models",
        headers={"X-API-Key": bundled_server.admin_key, "X-Request-Id": request_id},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 5
    while not (lines := _access_lines(bundled_server, request_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(lines) == 1, bundled_server.log.read_text()[-2000:]
    line = lines[0]
    assert line["level"] == "INFO" and line["method"] == "GET" and line["status"] == 200
    assert line["route"] == "/v1/models" and line["key_name"] and line["model_id"]
    assert isinstance(line["latency_ms"], float)
