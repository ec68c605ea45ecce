"""Search at scale, chosen by measurement: exact scan against HNSW in process (faiss, usearch) and in PostgreSQL
(pgvector), on clustered 512-d unit vectors that behave like face embeddings (ten faces per identity).

    .venv/bin/python bench/search.py [--sizes 100000 1000000] [--queries 200] [--pgvector-max 100000]

For each gallery size and candidate: build time, p50 and p99 latency of one top-10 query per call (what a
search request does), and recall@1 and recall@10 against the exact top-10. Queries are new faces of enrolled
identities (a fresh draw around the identity's centre), so their neighbours compete closely, as in a real
gallery. pgvector runs in a real PostgreSQL 16 started from pgserver; its HNSW build is the slowest part, so it
runs only up to --pgvector-max faces. Writes bench/results/search.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import RESULTS, markdown_table, write_json  # noqa: E402

logger = logging.getLogger("bench.search")
DIM = 512
K = 10
FACES_PER_IDENTITY = 10
# Spread of one identity's faces around its centre: at 512-d two faces of one identity meet at cosine ~0.92 and
# faces of different identities at ~0, so the exact top-10 of a query is its identity's ten faces, and 100k tight,
# mutually orthogonal clusters (at 1M) are what an HNSW graph finds hardest to navigate between.
NOISE = 0.3

Vectors = npt.NDArray[np.float32]
Searcher = Callable[[Vectors], npt.NDArray[np.int64]]


def unit(x: Vectors) -> Vectors:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def gallery(n: int, queries: int, seed: int = 0) -> tuple[Vectors, Vectors]:
    """n gallery faces of n/10 identities, and new faces of randomly chosen enrolled identities."""
    rng = np.random.default_rng(seed)
    n_ids = max(1, n // FACES_PER_IDENTITY)
    centres = rng.standard_normal((n_ids, DIM), dtype=np.float32)
    out = np.empty((n, DIM), dtype=np.float32)
    chunk = 100_000
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        owners = np.arange(start, stop) % n_ids
        out[start:stop] = unit(centres[owners] + NOISE * rng.standard_normal((stop - start, DIM), dtype=np.float32))
    who = rng.integers(0, n_ids, queries)
    q = unit(centres[who] + NOISE * rng.standard_normal((queries, DIM), dtype=np.float32))
    return out, q


def exact_top(vecs: Vectors, q: Vectors) -> npt.NDArray[np.int64]:
    import faiss

    index = faiss.IndexFlatIP(DIM)
    index.add(vecs)
    _, ids = index.search(q, K)
    return ids


def measure(name: str, search: Searcher, q: Vectors, truth: npt.NDArray[np.int64], build_s: float) -> dict[str, Any]:
    """Latency of one query per call, and recall against the exact top-10."""
    for row in q[:5]:
        search(row)  # warm caches and lazy allocations
    lat, r1, r10 = [], [], []
    for row, want in zip(q, truth, strict=True):
        t0 = time.perf_counter()
        got = search(row)
        lat.append(time.perf_counter() - t0)
        r1.append(float(len(got) > 0 and got[0] == want[0]))
        r10.append(len(set(got[:K].tolist()) & set(want.tolist())) / K)
    ms = np.asarray(lat) * 1000
    row = {
        "candidate": name,
        "build_s": round(build_s, 2),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "recall_at_1": float(np.mean(r1)),
        "recall_at_10": float(np.mean(r10)),
    }
    logger.info("%s", row)
    return row


def exact_flat(vecs: Vectors) -> tuple[Searcher, float]:
    """The service's exact path: a faiss flat inner-product scan."""
    import faiss

    t0 = time.perf_counter()
    index = faiss.IndexFlatIP(DIM)
    index.add(vecs)
    built = time.perf_counter() - t0

    def search(q: Vectors) -> npt.NDArray[np.int64]:
        return index.search(q[None, :], K)[1][0]

    return search, built


def faiss_hnsw(vecs: Vectors, m: int, ef_construction: int) -> tuple[Callable[[int], Searcher], float]:
    """The service's approximate path (service.vector_index past DPRIME_EXACT_SEARCH_MAX_FACES): built once, then
    a searcher per efSearch."""
    import faiss

    t0 = time.perf_counter()
    index = faiss.IndexHNSWFlat(DIM, m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.add(vecs)
    built = time.perf_counter() - t0

    def with_ef(ef: int) -> Searcher:
        def search(q: Vectors) -> npt.NDArray[np.int64]:
            index.hnsw.efSearch = ef
            return index.search(q[None, :], K)[1][0]

        return search

    return with_ef, built


def usearch_hnsw(vecs: Vectors, m: int, ef_construction: int) -> tuple[Callable[[int], Searcher], float]:
    from usearch.index import Index

    t0 = time.perf_counter()
    index = Index(ndim=DIM, metric="ip", dtype="f32", connectivity=m, expansion_add=ef_construction)
    index.add(np.arange(len(vecs), dtype=np.uint64), vecs, threads=os.cpu_count() or 1)
    built = time.perf_counter() - t0

    def with_ef(ef: int) -> Searcher:
        def search(q: Vectors) -> npt.NDArray[np.int64]:
            index.expansion_search = ef  # type: ignore[misc]
            return np.asarray(index.search(q, K).keys, dtype=np.int64)

        return search

    return with_ef, built


def pgvector_hnsw(vecs: Vectors, m: int, ef_construction: int, uri: str) -> tuple[Any, float]:
    """A vector(512) column with an HNSW index (inner product); returns the connection and the index build time."""
    import psycopg
    from pgvector.psycopg import register_vector

    conn = psycopg.connect(uri, autocommit=True)
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    register_vector(conn)
    conn.execute("DROP TABLE IF EXISTS bench_faces")
    conn.execute(f"CREATE TABLE bench_faces (id BIGINT PRIMARY KEY, v vector({DIM}) NOT NULL)")
    t_load = time.perf_counter()
    with conn.cursor() as cur, cur.copy("COPY bench_faces (id, v) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["int8", "vector"])
        for i, v in enumerate(vecs):
            copy.write_row((i, v))
    logger.info("pgvector: loaded %d rows in %.1f s", len(vecs), time.perf_counter() - t_load)
    conn.execute("SET maintenance_work_mem = '4GB'")
    conn.execute(f"SET max_parallel_maintenance_workers = {max(0, (os.cpu_count() or 1) - 1)}")
    t0 = time.perf_counter()
    conn.execute(
        f"CREATE INDEX ON bench_faces USING hnsw (v vector_ip_ops) WITH (m = {m}, ef_construction = {ef_construction})"
    )
    return conn, time.perf_counter() - t0


def pgvector_search(conn: Any, ef_search: int) -> Searcher:
    """One top-10 query per call over a Unix socket, as a replica would send it."""
    conn.execute(f"SET hnsw.ef_search = {ef_search}")

    def search(q: Vectors) -> npt.NDArray[np.int64]:
        rows = conn.execute("SELECT id FROM bench_faces ORDER BY v <#> %s LIMIT %s", (q, K), prepare=True).fetchall()
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    return search


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--m", type=int, default=32, help="HNSW degree (DPRIME_HNSW_M)")
    parser.add_argument("--ef-construction", type=int, default=160, help="DPRIME_HNSW_EF_CONSTRUCTION")
    parser.add_argument("--ef-search", type=int, nargs="+", default=[64, 128, 256], help="DPRIME_HNSW_EF_SEARCH values")
    parser.add_argument("--pgvector-max", type=int, default=100_000, help="largest gallery pgvector is built for")
    parser.add_argument("--pg-m", type=int, default=16, help="pgvector HNSW m (its default)")
    parser.add_argument("--pg-ef-construction", type=int, default=64, help="pgvector HNSW ef_construction (default)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["faiss_hnsw", "usearch_hnsw", "pgvector_hnsw"])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--keep-other-sizes",
        action="store_true",
        help="keep the rows of sizes not measured now from the existing output (measure 1M apart from 100k)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    out = args.out or RESULTS / "search.json"
    if args.keep_other_sizes and out.is_file():
        before = json.loads(out.read_text())
        rows = [r for r in before["rows"] if r["faces"] not in args.sizes]
        skipped = [s for s in before.get("skipped", []) if not any(f" {n} faces" in s for n in args.sizes)]

    def save() -> None:
        # After every candidate: a long run stopped midway keeps what it measured.
        payload = {"dim": DIM, "k": K, "queries": args.queries, "rows": rows, "skipped": skipped}
        write_json("search", payload, out)

    for n in args.sizes:
        vecs, q = gallery(n, args.queries)
        truth = exact_top(vecs, q)
        search, built = exact_flat(vecs)
        rows.append({"faces": n, **measure("exact (faiss flat)", search, q, truth, built)})
        save()
        del search
        for label, build in (("faiss", faiss_hnsw), ("usearch", usearch_hnsw)):
            if f"{label}_hnsw" in args.skip:
                continue
            with_ef, built = build(vecs, args.m, args.ef_construction)
            for ef in args.ef_search:
                name = f"{label} HNSW m={args.m} efC={args.ef_construction} ef={ef}"
                rows.append({"faces": n, **measure(name, with_ef(ef), q, truth, built)})
            save()
            del with_ef
        if "pgvector_hnsw" not in args.skip:
            if n > args.pgvector_max:
                skipped.append(f"pgvector HNSW at {n} faces: above --pgvector-max={args.pgvector_max}")
            else:
                rows.extend({"faces": n, **r} for r in _pgvector_rows(vecs, q, truth, args))
        save()
    table = markdown_table(rows, ["faces", "candidate", "build_s", "p50_ms", "p99_ms", "recall_at_1", "recall_at_10"])
    sys.stdout.write(table + "".join(f"\nnot run: {s}" for s in skipped) + "\n")
    return 0


def _pgvector_rows(
    vecs: Vectors, q: Vectors, truth: npt.NDArray[np.int64], args: argparse.Namespace
) -> list[dict[str, Any]]:
    from tests.pg_server import pg_test_server

    out: list[dict[str, Any]] = []
    with pg_test_server() as server:
        if isinstance(server, str):
            logger.warning("pgvector not measured: %s", server)
            return out
        conn, built = pgvector_hnsw(vecs, args.pg_m, args.pg_ef_construction, server.uri())
        try:
            for ef in args.ef_search:
                name = f"pgvector HNSW m={args.pg_m} efC={args.pg_ef_construction} ef={ef}"
                out.append(measure(name, pgvector_search(conn, ef), q, truth, built))
        finally:
            conn.close()
    return out


if __name__ == "__main__":
    raise SystemExit(main())
