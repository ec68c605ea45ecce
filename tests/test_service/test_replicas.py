"""Three real uvicorn processes over one PostgreSQL act as one service: what one replica acknowledges (enrollment,
deletion, key revocation, a model switch or rollback) the others serve within about a second; a switch re-embeds
the gallery once, in the replica that leads it; every answer names the model that gave it.

The propagation times measured are attached to the test report (record_property) and logged. Enrollments and
deletions are held to the promise, 1 s from the acknowledgement until a search on another replica shows them (the
search's own time included); a model switch has no such promise (the leader re-embeds first), only a loose bound
that a replica which never follows fails."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from service.config import Settings
from service.repositories import open_stores
from tests.images import astronaut_jpeg
from tests.live_server import LiveServer, serve
from tests.pg_server import PgTestServer

logger = logging.getLogger(__name__)

ADMIN = "replica-admin-key"
# What the service promises for enrollments and deletions (replicas poll every 0.2 s here, the default).
PROPAGATION_BOUND_S = 1.0
SWITCH_BOUND_S = 60.0


@pytest.fixture
def replicas(pg_server: PgTestServer, models_dir: Path, tmp_path: Path) -> Iterator[tuple[list[LiveServer], str]]:
    """Three service processes over one fresh database, each with its own data dir, sharing the models dir."""
    with pg_server.database() as url, ExitStack() as stack:
        env = {"DPRIME_GALLERY_URL": url, "DPRIME_REPLICA_POLL_INTERVAL_S": "0.2", "DPRIME_INTRA_OP_THREADS": "1"}
        servers = []
        for i in range(3):
            data = tmp_path / f"replica-{i}" / "var"
            data.mkdir(parents=True)
            servers.append(stack.enter_context(serve(models_dir, data, ADMIN, data.parent / "log", env_extra=env)))
        yield servers, url


def until(check: Callable[[], Any], bound_s: float) -> float:
    """Seconds until check() is truthy (polled every 20 ms); fails past bound_s."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > bound_s:
            raise AssertionError(f"not seen within {bound_s} s")
        time.sleep(0.02)
    return time.monotonic() - start


def search_ids(server: LiveServer, key: str = ADMIN) -> list[str]:
    r = httpx.post(
        f"{server.url}/v1/search",
        files={"image": ("q.jpg", astronaut_jpeg())},
        headers={"X-API-Key": key},
        timeout=30,
    )
    r.raise_for_status()
    return [h["identity_id"] for h in r.json()["hits"]]


def reembedded(server: LiveServer) -> float:
    text = httpx.get(f"{server.url}/metrics", headers={"X-API-Key": ADMIN}, timeout=10).text
    line = next(x for x in text.splitlines() if x.startswith("dprime_gallery_reembedded_faces_total "))
    return float(line.split()[1])


def model_of(server: LiveServer) -> str:
    return str(httpx.get(f"{server.url}/ready", timeout=10).json().get("model_id"))


@pytest.mark.slow
def test_three_replicas_act_as_one_service(
    replicas: tuple[list[LiveServer], str],
    make_settings: Callable[..., Settings],
    record_property: Callable[[str, object], None],
) -> None:
    (r1, r2, r3), url = replicas
    admin = {"X-API-Key": ADMIN}
    times: dict[str, float] = {}

    # Enrollment acknowledged by r1 is found by searches on r2 and r3.
    r = httpx.post(
        f"{r1.url}/v1/identities",
        data={"name": "E"},
        files=[("images", ("a.jpg", astronaut_jpeg()))],
        headers=admin,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    identity = r.json()["identity"]["id"]
    times["enroll_r1_to_r2_s"] = until(lambda: identity in search_ids(r2), PROPAGATION_BOUND_S)
    times["enroll_r1_to_r3_s"] = until(lambda: identity in search_ids(r3), PROPAGATION_BOUND_S)

    # A key made and revoked outside the service (dprime keys) works, then stops working, on every replica.
    stores = open_stores(make_settings(gallery_url=url))
    try:
        info, key = stores.keys.create("reader", "read")
        assert search_ids(r3, key) == [identity]
        stores.keys.revoke(info.key_id)
    finally:
        stores.close()
    for server in (r1, r2, r3):
        refused = httpx.get(f"{server.url}/v1/keys/me", headers={"X-API-Key": key}, timeout=10)
        assert refused.status_code == 401  # keys are read from the database on every request: no delay

    # Deletion acknowledged by r2 is gone from r1 and r3.
    assert httpx.delete(f"{r2.url}/v1/identities/{identity}", headers=admin, timeout=30).status_code == 200
    times["delete_r2_to_r1_s"] = until(lambda: identity not in search_ids(r1), PROPAGATION_BOUND_S)
    times["delete_r2_to_r3_s"] = until(lambda: identity not in search_ids(r3), PROPAGATION_BOUND_S)

    # Enroll again, then switch models from r3: it leads and re-embeds; r1 and r2 follow without re-embedding.
    r = httpx.post(
        f"{r2.url}/v1/identities",
        data={"name": "F"},
        files=[("images", ("a.jpg", astronaut_jpeg()))],
        headers=admin,
        timeout=30,
    )
    identity = r.json()["identity"]["id"]
    times["enroll_r2_to_r3_s"] = until(lambda: identity in search_ids(r3), PROPAGATION_BOUND_S)
    start = time.monotonic()
    job = httpx.post(f"{r3.url}/v1/admin/models/tiny-b/activate", headers=admin, timeout=30).json()
    busy = httpx.post(f"{r1.url}/v1/admin/models/tiny-b/activate", headers=admin, timeout=30)
    assert busy.status_code in (409, 202)  # 409 while r3 leads; 202 only if r3 had already finished
    until(lambda: model_of(r3) == "tiny-b", SWITCH_BOUND_S)
    done = httpx.get(f"{r3.url}/v1/admin/jobs/{job['job_id']}", headers=admin, timeout=10).json()
    assert done["status"] == "succeeded" and done["faces_done"] == 1
    times["switch_r3_to_r1_s"] = until(lambda: model_of(r1) == "tiny-b", SWITCH_BOUND_S) + (time.monotonic() - start)
    until(lambda: model_of(r2) == "tiny-b", SWITCH_BOUND_S)
    for server in (r1, r2, r3):
        res = httpx.post(
            f"{server.url}/v1/search", files={"image": ("q.jpg", astronaut_jpeg())}, headers=admin, timeout=30
        )
        assert res.json()["model_id"] == "tiny-b" and res.headers["x-dprime-model"] == "tiny-b"
        assert [h["identity_id"] for h in res.json()["hits"]] == [identity]
    # Only the leader embedded the gallery.
    assert [reembedded(s) for s in (r1, r2, r3)] == [0.0, 0.0, 1.0]

    # Rollback from r1: all three return to tiny-a, whose vectors were kept.
    job = httpx.post(f"{r1.url}/v1/admin/models/rollback", headers=admin, timeout=30)
    assert job.status_code == 202, job.text
    start = time.monotonic()
    for server in (r1, r2, r3):
        until(lambda s=server: model_of(s) == "tiny-a", SWITCH_BOUND_S)  # type: ignore[misc]
    times["rollback_all_s"] = time.monotonic() - start
    assert all(search_ids(s) == [identity] for s in (r1, r2, r3))

    for name, seconds in times.items():
        record_property(name, round(seconds, 3))
    logger.info("replica propagation: %s", {k: round(v, 3) for k, v in times.items()})


def test_a_switch_is_refused_while_another_replica_leads_one(
    pg_server: PgTestServer, make_settings: Callable[..., Settings]
) -> None:
    from fastapi.testclient import TestClient

    from service.main import create_app
    from tests.test_service.conftest import ADMIN_KEY
    from tests.test_service.test_models import wait_for

    with pg_server.database() as url:
        settings = make_settings(gallery_url=url)
        other = open_stores(settings)  # another replica, leading a switch
        release = other.try_lead_switch()
        assert release is not None
        try:
            with TestClient(create_app(settings), headers={"X-API-Key": ADMIN_KEY}) as c:
                r = c.post("/v1/admin/models/tiny-b/activate")
                assert (r.status_code, r.json()["error"]["code"]) == (409, "model_switch_in_progress")
                assert "another replica" in r.json()["error"]["message"]
                release()
                release = None
                job = wait_for(c, c.post("/v1/admin/models/tiny-b/activate").json())
                assert job["status"] == "succeeded" and c.get("/ready").json()["model_id"] == "tiny-b"
                assert other.gallery.pinned_model() == "tiny-b"  # what the other replicas follow
        finally:
            if release is not None:
                release()
            other.close()
