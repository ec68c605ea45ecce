"""HNSW graphs kept on disk between starts, so a replica holding millions of faces is ready in seconds, not the
minutes a rebuild takes (bench/search.py: about 24 minutes per million faces on two cores).

A snapshot is a cache, never the truth: the store is. Loading one checks that it is a graph of the right width
and degree, then brings it up to date with the store (faces enrolled since are added, faces deleted since are
left out of answers), so a snapshot from before a crash, or one a few changes old, still gives exact membership.
One directory per model (``<data_dir>/index/<model_id>/<collection>.faiss``); only the serving model's is kept.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

SUFFIX = ".faiss"
# Under the service's data directory: one subdirectory per model.
INDEX_DIR = "index"
# Graph rows compared with the store's vectors at a time (64k x 512 float32: 128 MiB).
_CHUNK = 65_536


def snapshot_path(model_dir: Path, collection: str) -> Path:
    """Where one collection's graph is kept in a model's snapshot directory (collection names are safe file names)."""
    return model_dir / f"{collection}{SUFFIX}"


def write_graph(index: faiss.Index, path: Path) -> None:
    """Write atomically and durably: a crash or a full disk mid-write leaves the previous snapshot (or none), never
    half of one, and no temporary file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        faiss.write_index(index, str(tmp))
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def read_graph(path: Path, dim: int, m: int) -> faiss.IndexIDMap2 | None:
    """The ID-mapped HNSW graph at path, or None (saying why) when it is missing, unreadable or built otherwise."""
    if not path.is_file():
        return None
    try:
        index = faiss.read_index(str(path))
    except Exception as exc:  # noqa: BLE001 - any unreadable file (even one claiming absurd sizes) is a rebuild
        logger.warning("index snapshot %s unreadable (%s): rebuilding", path, exc)
        return None
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else None
    if (
        not isinstance(index, faiss.IndexIDMap2)
        or not isinstance(inner, faiss.IndexHNSWFlat)
        or inner.metric_type != faiss.METRIC_INNER_PRODUCT
        or index.d != dim
        or inner.hnsw.nb_neighbors(1) != m  # type: ignore[attr-defined]
    ):
        logger.warning("index snapshot %s is not a %d-d HNSW graph of degree %d: rebuilding", path, dim, m)
        return None
    return index


def agrees_with_store(
    graph: faiss.IndexIDMap2, face_ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32], high_water: int
) -> bool:
    """True when the graph can only hold faces the store gave out (none above its highest face id ever) and every
    face both hold has the same vector in both, bit for bit: a snapshot written before a gallery restore, or under
    another model with the same id, is refused instead of trusted. Compared in chunks, to bound the extra memory."""
    graph_ids = faiss.vector_to_array(graph.id_map).astype(np.int64)
    if len(graph_ids) == 0:
        return True
    if int(graph_ids.max()) > high_water:
        return False
    if len(face_ids) == 0:
        return True
    order = np.argsort(face_ids)
    sorted_ids = np.asarray(face_ids, dtype=np.int64)[order]
    inner = faiss.downcast_index(graph.index)
    for start in range(0, len(graph_ids), _CHUNK):
        chunk = graph_ids[start : start + _CHUNK]
        pos = np.clip(np.searchsorted(sorted_ids, chunk), 0, len(sorted_ids) - 1)
        common = sorted_ids[pos] == chunk
        if not common.any():
            continue
        kept = inner.reconstruct_n(start, len(chunk))[common]
        if not np.array_equal(kept, np.asarray(vectors[order[pos[common]]], dtype=np.float32)):
            return False
    return True


def removed_share(graph: faiss.IndexIDMap2, face_ids: npt.NDArray[np.int64]) -> float:
    """The share of the graph's nodes whose face the store no longer holds."""
    graph_ids = faiss.vector_to_array(graph.id_map).astype(np.int64)
    if len(graph_ids) == 0:
        return 0.0
    return float(np.mean(~np.isin(graph_ids, face_ids)))


def keep_only(model_dir: Path) -> None:
    """Remove the snapshots of every other model beside model_dir (only the serving model's are worth their disk;
    a rollback rebuilds once)."""
    if not model_dir.parent.is_dir():
        return
    for child in model_dir.parent.iterdir():
        if child.is_dir() and child != model_dir:
            shutil.rmtree(child, ignore_errors=True)
