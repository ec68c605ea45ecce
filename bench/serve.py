"""Service throughput and latency, measured in one run on 127.0.0.1 (bounded load).

    .venv/bin/python bench/serve.py [--model-id ID] [--seconds 20] [--clients 16] [--sizes 10000 100000 1000000]

Reports: raw onnxruntime throughput of the model at the engine's batch size; the service's end-to-end
/v1/embed throughput with 16 concurrent clients sending pre-aligned crops, and its ratio to the raw figure;
p50/p99 latency of /v1/verify on two real photos; and search latency (one query per call) over galleries of
10k, 100k and 1M identities for the index the service uses (faiss flat inner product) and, for comparison,
a numpy matmul with top-k. Writes bench/results/serve.json.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import write_json  # noqa: E402

logger = logging.getLogger("bench.serve")
KEY = "bench-admin-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raw_throughput(model_dir: Path, batch: int, seconds: float) -> float:
    """Images/s of onnxruntime alone on full batches of real-shaped input."""
    from facecore.manifest import load_manifest
    from facepipe.embedder import OnnxEmbedder

    manifest = load_manifest(model_dir)
    embedder = OnnxEmbedder(model_dir, manifest, providers=["cuda", "cpu"] if _has_cuda() else ["cpu"])
    h, w = manifest.preprocess.input_size
    x = np.random.default_rng(0).normal(size=(batch, 3, h, w)).astype(np.float32)
    embedder.embed(x)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        embedder.embed(x)
        n += batch
    return n / (time.perf_counter() - start)


def _has_cuda() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def aligned_crop(size: tuple[int, int]) -> bytes:
    """A real face, pre-cropped to the model input and PNG-encoded."""
    import cv2
    from skimage import data

    img = np.asarray(data.astronaut())[40:200, 160:300]
    crop = cv2.resize(img, (size[1], size[0]))
    ok, png = cv2.imencode(".png", crop[:, :, ::-1])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return png.tobytes()


def _client(args: tuple[str, bytes, float, int]) -> tuple[int, list[float]]:
    """One client process with ``threads`` threads posting /v1/embed until the deadline."""
    import threading

    import httpx2

    url, crop, deadline, threads = args
    done: list[int] = []
    lat: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        with httpx2.Client(timeout=60) as c:
            while time.time() < deadline:
                t0 = time.perf_counter()
                r = c.post(url, headers={"X-API-Key": KEY}, files={"image": ("f.png", crop)}, data={"aligned": "true"})
                r.raise_for_status()
                with lock:
                    done.append(1)
                    lat.append(time.perf_counter() - t0)

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return len(done), lat


def e2e_throughput(base: str, crop: bytes, clients: int, seconds: float) -> dict[str, float]:
    """Requests (= faces) per second through /v1/embed from ``clients`` concurrent clients in 4 processes."""
    procs = min(4, clients)
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    deadline = time.time() + seconds
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(procs) as pool:
        results = pool.map(_client, [(f"{base}/v1/embed", crop, deadline, n) for n in per])
    elapsed = time.perf_counter() - start
    total = sum(n for n, _ in results)
    lat = np.concatenate([np.asarray(x) for _, x in results]) if total else np.zeros(1)
    return {
        "faces_per_s": total / elapsed,
        "requests": total,
        "p50_ms": float(np.percentile(lat, 50) * 1000),
        "p99_ms": float(np.percentile(lat, 99) * 1000),
    }


def verify_latency(base: str, n: int) -> dict[str, float]:
    """p50/p99 of sequential /v1/verify calls on two real photos (detection, alignment, two embeddings)."""
    import httpx2

    from tests.images import astronaut_jpeg, astronaut_variant_jpeg

    a, b = astronaut_jpeg(), astronaut_variant_jpeg()
    lat = []
    with httpx2.Client(timeout=60) as c:
        for i in range(n + 3):
            t0 = time.perf_counter()
            r = c.post(
                f"{base}/v1/verify",
                headers={"X-API-Key": KEY},
                files={"image_a": ("a.jpg", a), "image_b": ("b.jpg", b)},
            )
            r.raise_for_status()
            if i >= 3:
                lat.append(time.perf_counter() - t0)
    arr = np.asarray(lat) * 1000
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "n": n,
        "decision": r.json()["decision"],
    }


def search_latency(sizes: list[int], dim: int, queries: int) -> list[dict[str, Any]]:
    """ms per single-query search over n clustered unit vectors: faiss flat IP (the service) vs numpy top-k."""
    from service.vector_index import IndexParams, VectorIndex

    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        centers = rng.normal(size=(max(n // 10, 1), dim)).astype(np.float32)
        vecs = centers[rng.integers(0, len(centers), n)] + 0.3 * rng.normal(size=(n, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        # Exact at every size: this compares the flat scan with numpy (bench/search.py measures HNSW).
        index = VectorIndex(
            dim,
            IndexParams(
                exact_max=n, hnsw_m=32, hnsw_ef_construction=160, hnsw_ef_search=128, rebuild_removed_share=0.1
            ),
        )
        index.add(np.arange(n, dtype=np.int64), vecs)
        q = vecs[rng.integers(0, n, queries)] + 0.05 * rng.normal(size=(queries, dim)).astype(np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        t_faiss, t_np = [], []
        for row in q:
            t0 = time.perf_counter()
            index.search(row[None], 28)
            t_faiss.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            scores = vecs @ row
            top = np.argpartition(-scores, 28)[:28]
            top[np.argsort(-scores[top])]
            t_np.append(time.perf_counter() - t0)
        rows.append(
            {
                "identities": n,
                "faiss_flat_ms_p50": float(np.median(t_faiss) * 1000),
                "numpy_topk_ms_p50": float(np.median(t_np) * 1000),
            }
        )
        logger.info(
            "search over %d: faiss %.2f ms, numpy %.2f ms",
            n,
            rows[-1]["faiss_flat_ms_p50"],
            rows[-1]["numpy_topk_ms_p50"],
        )
        del index, vecs
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--model-id", default=None, help="default: the active model")
    parser.add_argument("--batch", type=int, default=32, help="the engine's batch size (DPRIME_BATCH_SIZE)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--verify-n", type=int, default=40)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    from facecore.registry import ModelRegistry

    model_id = args.model_id or ModelRegistry(args.models_dir).active_id()
    if model_id is None:
        raise SystemExit("no active model; pass --model-id")
    model_dir = args.models_dir / model_id
    raw_before = raw_throughput(model_dir, args.batch, args.seconds / 2)
    logger.info("raw onnxruntime: %.1f img/s at batch %d", raw_before, args.batch)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            DPRIME_ADMIN_KEY=KEY,
            DPRIME_DATA_DIR=tmp,
            DPRIME_MODELS_DIR=str(args.models_dir),
            DPRIME_MODEL_ID=model_id,
            DPRIME_BATCH_SIZE=str(args.batch),
            DPRIME_LOG_LEVEL="WARNING",
            DPRIME_QUEUE_SIZE="1024",
        )
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "service.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            cwd=REPO,
        )
        try:
            import httpx2

            for _ in range(600):
                try:
                    if httpx2.get(f"{base}/ready", timeout=1).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                time.sleep(0.2)
            from facecore.manifest import load_manifest

            size = load_manifest(model_dir).preprocess.input_size
            e2e = e2e_throughput(base, aligned_crop(size), args.clients, args.seconds)
            logger.info("end-to-end /v1/embed: %.1f faces/s (%d clients)", e2e["faces_per_s"], args.clients)
            verify = verify_latency(base, args.verify_n)
            logger.info("verify: p50 %.1f ms, p99 %.1f ms", verify["p50_ms"], verify["p99_ms"])
        finally:
            server.terminate()
            server.wait(30)
    # The machine is shared: raw throughput is measured before and after the service run and averaged.
    raw_after = raw_throughput(model_dir, args.batch, args.seconds / 2)
    raw = 0.5 * (raw_before + raw_after)
    dim = load_manifest(model_dir).embedding_dim
    search = search_latency(args.sizes, dim, args.queries)
    result = {
        "model_id": model_id,
        "batch": args.batch,
        "clients": args.clients,
        "raw_onnxruntime_img_per_s": raw,
        "raw_before_after": [raw_before, raw_after],
        "embed_end_to_end": e2e,
        "end_to_end_over_raw": e2e["faces_per_s"] / raw,
        "verify": verify,
        "search": search,
    }
    path = write_json("serve", result)
    sys.stdout.write(f"{result}\nwritten to {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
