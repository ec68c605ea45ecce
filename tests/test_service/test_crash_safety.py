"""Crash safety: a real service process is SIGKILLed at random points during enrollment, deletion and a model
switch, then restarted. Nothing acknowledged is lost, nothing is half-present, the search index agrees with the
store, and a switch that was cut off leaves the previous model serving."""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.images import astronaut_jpeg, astronaut_variant_jpeg
from tests.service_process import LiveServer, start_server

logger = logging.getLogger(__name__)
PHOTOS = [astronaut_jpeg(), astronaut_variant_jpeg()]


class Dir:
    """The data directory of the runs, and a log for every process."""

    def __init__(self, models: Path, tmp: Path) -> None:
        self.models, self.data, self.tmp, self.n = models, tmp / "var", tmp, 0
        tmp.mkdir(parents=True, exist_ok=True)

    def start(self) -> LiveServer:
        self.n += 1
        return start_server(self.models, self.data, self.tmp / f"server-{self.n}.log")


def store_facts(data: Path) -> dict[str, object]:
    """What the gallery file holds, read with the service dead."""
    conn = sqlite3.connect(data / "gallery.sqlite3")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        pinned = conn.execute("SELECT value FROM meta WHERE key = 'model_id'").fetchone()[0]
        ids = {r[0] for r in conn.execute("SELECT id FROM identities")}
        empty = conn.execute(
            "SELECT COUNT(*) FROM identities i WHERE NOT EXISTS "
            "(SELECT 1 FROM faces f WHERE f.identity_rowid = i.rowid)"
        ).fetchone()[0]
        faces = conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
        unembedded = conn.execute(
            "SELECT COUNT(*) FROM faces f WHERE NOT EXISTS "
            "(SELECT 1 FROM embeddings e WHERE e.face_id = f.id AND e.model_id = ?)",
            (pinned,),
        ).fetchone()[0]
    finally:
        conn.close()
    return {"pinned": pinned, "ids": ids, "empty": empty, "faces": faces, "unembedded": unembedded}


def check_restart(d: Dir, present: set[str], gone: set[str]) -> LiveServer:
    """After a kill: the store is whole on disk, and the restarted service serves exactly it."""
    facts = store_facts(d.data)
    assert facts["empty"] == 0, "an identity without faces: an enrollment was half-stored"
    assert facts["unembedded"] == 0, "a face without an embedding of the serving model"
    ids: set[str] = facts["ids"]  # type: ignore[assignment]
    assert present <= ids, f"acknowledged enrollments lost: {sorted(present - ids)}"
    assert not gone & ids, f"acknowledged deletions came back: {sorted(gone & ids)}"
    server = d.start()
    ready = httpx.get(f"{server.base}/ready", timeout=10).json()
    # A kill between the gallery's pin and the registry's write leaves the two apart on disk; the restarted service
    # serves the registry's model and pins the gallery to it, so they are compared once it is ready.
    facts = store_facts(d.data)
    assert ready["gallery_faces"] == facts["faces"], "the search index disagrees with the store"
    active = json.loads((d.models / "active.json").read_text())["active"]
    assert ready["model_id"] == active == facts["pinned"] or facts["faces"] == 0
    with server.client() as c:
        for identity_id in list(present)[:5]:
            assert c.get(f"/v1/identities/{identity_id}").status_code == 200
        if facts["faces"]:
            hits = c.post("/v1/search", files={"image": ("q.jpg", PHOTOS[0])}, data={"k": "1"}).json()["hits"]
            assert hits and hits[0]["identity_id"] in ids
    return server


def run_until_killed(server: LiveServer, delay: float, work: Callable[[httpx.Client], None]) -> None:
    """Run work in a thread, SIGKILL the server after delay seconds, then wait for the thread to notice."""

    errors: list[BaseException] = []

    def loop() -> None:
        with server.client(timeout=30) as c:
            try:
                work(c)
            except httpx.TransportError:
                return  # the kill
            except BaseException as exc:  # an unexpected answer: fail the test, not just the thread
                errors.append(exc)

    t = threading.Thread(target=loop)
    t.start()
    time.sleep(delay)
    server.kill()
    t.join(60)
    assert not t.is_alive()
    assert not errors, errors


def enroll_until_killed(server: LiveServer, delay: float, acked: set[str]) -> None:
    def work(c: httpx.Client) -> None:
        i = 0
        while True:
            files = [("images", (f"{i}.jpg", PHOTOS[i % 2])), ("images", (f"{i}b.jpg", PHOTOS[(i + 1) % 2]))]
            r = c.post("/v1/identities", data={"name": f"p{i}"}, files=files)
            assert r.status_code == 201, r.text
            acked.add(r.json()["identity"]["id"])
            i += 1

    run_until_killed(server, delay, work)


def enrollment_kills(models_dir: Path, tmp_path: Path, kills: int) -> int:
    rng = random.Random(12)
    d = Dir(models_dir, tmp_path)
    acked: set[str] = set()
    server = d.start()
    for _ in range(kills):
        enroll_until_killed(server, rng.uniform(0.2, 1.5), acked)
        server = check_restart(d, acked, set())
    server.stop()
    return len(acked)


def delete_all(c: httpx.Client, present: set[str], gone: set[str]) -> None:
    for identity_id in sorted(present):
        r = c.delete(f"/v1/identities/{identity_id}")
        assert r.status_code == 200, r.text
        present.discard(identity_id)
        gone.add(identity_id)


def deletion_kills(models_dir: Path, tmp_path: Path, kills: int) -> int:
    """Kill during deletions; returns how many acknowledged deletions stayed deleted."""
    rng = random.Random(13)
    d = Dir(models_dir, tmp_path)
    present: set[str] = set()
    gone: set[str] = set()
    server = d.start()
    for _ in range(kills):
        enroll_until_killed(server, 2.0, present)
        server = check_restart(d, present, gone)

        run_until_killed(server, rng.uniform(0.05, 0.6), lambda c: delete_all(c, present, gone))
        # An unacknowledged deletion may have happened or not, but whole: drop it from what must be present.
        present.intersection_update(store_facts(d.data)["ids"])  # type: ignore[arg-type]
        server = check_restart(d, present, gone)
    server.stop()
    return len(gone)


def switch_kills(models_dir: Path, tmp_path: Path, kills: int) -> list[str]:
    """Kill during activations; returns which model served after each restart."""
    rng = random.Random(14)
    d = Dir(models_dir, tmp_path)
    present: set[str] = set()
    server = d.start()
    enroll_until_killed(server, 3.0, present)
    server = check_restart(d, present, set())
    outcomes = []
    for n in range(kills):
        with server.client() as c:
            before = c.get("/v1/models/active").json()["model_id"]
            target = "tiny-b" if before == "tiny-a" else "tiny-a"
            job = c.post(f"/v1/admin/models/{target}/activate").json()
            # The first kill lands right after the switch began (long before it can commit); the others anywhere.
            delay = 0.0 if n == 0 else rng.uniform(0.0, 1.0)
            time.sleep(delay)
            seen = c.get(f"/v1/admin/jobs/{job['job_id']}").json()["status"] if delay else "running"
        server.kill()
        server = check_restart(d, present, set())
        serving = httpx.get(f"{server.base}/ready", timeout=10).json()["model_id"]
        if seen == "succeeded":
            assert serving == target, "an acknowledged switch was lost"
        assert serving in (before, target)
        if n == 0:
            assert serving == before, "a switch cut off before it committed must leave the previous model serving"
        outcomes.append("previous" if serving == before else "switched")
    server.stop()
    return outcomes


def test_kills_during_enrollment_lose_nothing_acknowledged(models_dir: Path, tmp_path: Path) -> None:
    assert enrollment_kills(models_dir, tmp_path, kills=2) > 0


def test_kills_during_deletion_never_bring_back_or_half_delete(models_dir: Path, tmp_path: Path) -> None:
    assert deletion_kills(models_dir, tmp_path, kills=1) > 0, "no deletion was acknowledged before the kill"


def test_a_switch_cut_off_leaves_the_previous_model_serving(models_dir: Path, tmp_path: Path) -> None:
    assert switch_kills(models_dir, tmp_path, kills=2)[0] == "previous"


@pytest.mark.slow
def test_many_kills(models_dir: Path, tmp_path: Path) -> None:
    # The counts are logged for the record (pytest -o log_cli=true --log-cli-level=INFO shows them).
    enrolled = enrollment_kills(models_dir, tmp_path / "enroll", kills=20)
    logger.info("enrollment: 20 SIGKILLs, %d acknowledged enrollments, none lost or half-present", enrolled)
    deleted = deletion_kills(models_dir, tmp_path / "delete", kills=10)
    logger.info("deletion: 10 SIGKILLs, %d acknowledged deletions, none came back", deleted)
    outcomes = switch_kills(models_dir, tmp_path / "switch", kills=10)
    logger.info(
        "model switch: 10 SIGKILLs, %d left the previous model serving, %d the new one, none a mix",
        outcomes.count("previous"),
        outcomes.count("switched"),
    )
    assert enrolled > 0 and deleted > 0
