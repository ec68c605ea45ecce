"""Overload: find the concurrency the service sustains on /v1/verify, then offer 4x it with admission control set
to that capacity, and compare (bounded load on 127.0.0.1 only).

    .venv/bin/python bench/load.py [--levels 1 2 3 4 6 8] [--step-seconds 15] [--seconds 40] [--factor 4]

1. Ladder: a server with no practical in-flight bound; each concurrency level runs for --step-seconds. The
   sustainable concurrency is the smallest level whose throughput reaches 95 % of the best level's.
2. A fresh server with DPRIME_MAX_IN_FLIGHT = that concurrency runs --seconds at it, then --seconds at --factor
   times as many clients. Clients are closed-loop (send, wait, send again), several processes of asyncio +
   httpx2, and honour Retry-After on a 503 as the service asks.

Writes bench/results/load.json: accepted throughput and p99 at both loads and their ratios, 503 sheds (expected
at 4x), other 5xx (target 0), client timeouts (target 0), shed-answer latency, and the server's RSS growth
over step 2 (target <= 100 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import write_json  # noqa: E402

logger = logging.getLogger("bench.load")
CLIENT_TIMEOUT_S = 60.0
PROCESSES = 4


def photos() -> tuple[bytes, bytes]:
    """Two real photos of one person (the astronaut, and a mirrored crop of her)."""
    from tests.images import astronaut_jpeg, astronaut_variant_jpeg

    return astronaut_jpeg(), astronaut_variant_jpeg()


async def _clients(url: str, key: str, n: int, deadline: float) -> list[tuple[int, float, float]]:
    """n closed-loop clients until the deadline; (status, latency s, retry-after s) per request (status 0: timeout)."""
    import httpx2

    a, b = photos()
    out: list[tuple[int, float, float]] = []
    limits = httpx2.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx2.AsyncClient(timeout=CLIENT_TIMEOUT_S, limits=limits) as client:

        async def one() -> None:
            while time.time() < deadline:
                t0 = time.perf_counter()
                try:
                    r = await client.post(
                        url, headers={"X-API-Key": key}, files={"image_a": ("a.jpg", a), "image_b": ("b.jpg", b)}
                    )
                except httpx2.TimeoutException:
                    out.append((0, time.perf_counter() - t0, 0.0))
                    continue
                wait = float(r.headers.get("retry-after", 0)) if r.status_code == 503 else 0.0
                out.append((r.status_code, time.perf_counter() - t0, wait))
                if wait:
                    await asyncio.sleep(min(wait, max(deadline - time.time(), 0)))

        await asyncio.gather(*(one() for _ in range(n)))
    return out


def _client_process(args: tuple[str, str, int, float]) -> list[tuple[int, float, float]]:
    return asyncio.run(_clients(*args))


def offer(base: str, key: str, concurrency: int, seconds: float) -> dict[str, Any]:
    """Run `concurrency` clients for `seconds`; summarise what came back."""
    procs = min(PROCESSES, concurrency)
    per = [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]
    deadline = time.time() + seconds
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(procs) as pool:
        results = pool.map(_client_process, [(f"{base}/v1/verify", key, n, deadline) for n in per])
    elapsed = time.perf_counter() - start
    rows = [r for part in results for r in part]
    ok = np.array([lat for s, lat, _ in rows if s == 200])
    shed = np.array([lat for s, lat, _ in rows if s == 503])
    return {
        "concurrency": concurrency,
        "seconds": round(elapsed, 1),
        "accepted": int(ok.size),
        "accepted_per_s": round(ok.size / elapsed, 2),
        "p50_accepted_s": round(float(np.percentile(ok, 50)), 3) if ok.size else None,
        "p99_accepted_s": round(float(np.percentile(ok, 99)), 3) if ok.size else None,
        "shed_503": int(shed.size),
        "p99_shed_answer_ms": round(float(np.percentile(shed, 99)) * 1000, 1) if shed.size else None,
        "other_5xx": sum(1 for s, _, _ in rows if s >= 500 and s != 503),
        "other_status": sorted({s for s, _, _ in rows if s not in (200, 503) and s < 500 and s != 0}),
        "client_timeouts": sum(1 for s, _, _ in rows if s == 0),
    }


def rss_mb(pid: int) -> float:
    """Resident set size of a process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def serve(data_dir: Path, log: Path, max_in_flight: int) -> Any:
    """The service with the bundled model on a free port (logs at WARNING: the access log is not under test)."""
    from tests.service_process import start_server

    return start_server(
        REPO / "models",
        data_dir,
        log,
        DPRIME_MAX_IN_FLIGHT=str(max_in_flight),
        DPRIME_INTRA_OP_THREADS="0",
        DPRIME_BATCH_WAIT_MS="2",
        DPRIME_LOG_LEVEL="WARNING",
    )


def ladder(levels: list[int], step_seconds: float, tmp: Path) -> tuple[int, list[dict[str, Any]]]:
    from tests.service_process import ADMIN_KEY

    server = serve(tmp / "ladder", tmp / "ladder.log", max_in_flight=10_000)
    try:
        offer(server.base, ADMIN_KEY, 2, 5)  # warm-up
        steps = []
        for n in levels:
            steps.append(offer(server.base, ADMIN_KEY, n, step_seconds))
            logger.info("ladder %s", steps[-1])
    finally:
        server.stop()
    best = max(s["accepted_per_s"] for s in steps)
    sustainable = next(s["concurrency"] for s in steps if s["accepted_per_s"] >= 0.95 * best)
    return sustainable, steps


def overload(sustainable: int, factor: int, seconds: float, tmp: Path) -> dict[str, Any]:
    from tests.service_process import ADMIN_KEY

    server = serve(tmp / "overload", tmp / "overload.log", max_in_flight=sustainable)
    try:
        offer(server.base, ADMIN_KEY, sustainable, 5)  # warm-up: sessions, arenas, thread pool
        rss_start = rss_mb(server.proc.pid)
        at_capacity = offer(server.base, ADMIN_KEY, sustainable, seconds)
        rss_mid = rss_mb(server.proc.pid)
        over = offer(server.base, ADMIN_KEY, sustainable * factor, seconds)
        rss_end = rss_mb(server.proc.pid)
    finally:
        server.stop()
    return {
        "max_in_flight": sustainable,
        "at_sustainable": at_capacity,
        f"at_{factor}x": over,
        "rss_mb": {"start": round(rss_start, 1), "after_sustainable": round(rss_mid, 1), "end": round(rss_end, 1)},
    }


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2, 3, 4, 6, 8])
    parser.add_argument("--step-seconds", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--factor", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dprime-load-") as tmp:
        sustainable, steps = ladder(args.levels, args.step_seconds, Path(tmp))
        logger.info("sustainable concurrency: %d", sustainable)
        result = overload(sustainable, args.factor, args.seconds, Path(tmp))
    base, over = result["at_sustainable"], result[f"at_{args.factor}x"]
    verdict = {
        "p99_ratio": round(over["p99_accepted_s"] / base["p99_accepted_s"], 2),
        "throughput_ratio": round(over["accepted_per_s"] / base["accepted_per_s"], 3),
        "other_5xx": base["other_5xx"] + over["other_5xx"],
        "client_timeouts": base["client_timeouts"] + over["client_timeouts"],
        "rss_growth_mb": round(result["rss_mb"]["end"] - result["rss_mb"]["start"], 1),
    }
    verdict["targets_met"] = bool(
        verdict["p99_ratio"] <= 2.0
        and verdict["throughput_ratio"] >= 0.9
        and verdict["other_5xx"] == 0
        and verdict["client_timeouts"] == 0
        and verdict["rss_growth_mb"] <= 100
    )
    payload = {
        "route": "POST /v1/verify (two real photos, bundled model)",
        "clients": f"{PROCESSES} processes of asyncio + httpx2, closed loop, Retry-After honoured",
        "cpu_count": os.cpu_count(),
        "ladder": steps,
        "sustainable_concurrency": sustainable,
        **result,
        "verdict": verdict,
    }
    path = write_json("load", payload, args.out)
    logger.info("verdict %s -> %s", verdict, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
