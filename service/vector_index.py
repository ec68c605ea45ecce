"""The search index: a projection of the gallery's active-model embeddings, one per collection.

Up to ``exact_max`` faces a collection is searched exactly (faiss flat inner product over unit vectors); past it,
as an HNSW graph, which answers in milliseconds at a million faces at the cost of a recall that can fall below 1
(bench/search.py measures both). It is rebuilt from the store at start and after a model switch, and updated
under a write lock after each committed enrollment or deletion (this process's or, over PostgreSQL, another
replica's): adding a face already present or removing one absent changes nothing, so a change may arrive twice.
An exact part that grows past ``exact_max`` while the service runs is rebuilt as a graph in a background thread
and swapped in when done; searches meanwhile stay exact, and no change made during the build is lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from service.index_snapshot import agrees_with_store, read_graph, removed_share, snapshot_path, write_graph
from service.rwlock import ReadWriteLock

logger = logging.getLogger(__name__)

# Faces added to a graph being built in the background between checks that it is still wanted.
_BUILD_CHUNK = 50_000


@dataclass(frozen=True)
class IndexParams:
    """How a collection's index is built (from settings)."""

    exact_max: int
    hnsw_m: int
    hnsw_ef_construction: int
    hnsw_ef_search: int
    # A graph read back from disk is rebuilt instead when more than this share of its nodes are deleted faces.
    rebuild_removed_share: float


class VectorIndex:
    """Cosine search (inner product of unit vectors) keyed by face id: exact, or HNSW past params.exact_max."""

    def __init__(self, dim: int, params: IndexParams, expected: int = 0) -> None:
        self.dim = dim
        self.params = params
        self.approximate = expected > params.exact_max
        if self.approximate:
            hnsw = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = params.hnsw_ef_construction
            hnsw.hnsw.efSearch = params.hnsw_ef_search
            self._index = faiss.IndexIDMap2(hnsw)
        else:
            self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._ids: set[int] = set()
        # HNSW cannot drop a node: removed faces stay in the graph (still paths through it) and the search is told
        # to leave them out of its results, so a search costs the same however many faces were removed.
        self._removed: set[int] = set()
        # faiss.IDSelectorNot over the removed faces, with the batch it points into (faiss holds raw pointers).
        self._exclude: tuple[Any, Any] | None = None
        # Set once this part has been replaced by a graph: later changes go to the graph (see CollectionIndex).
        self._successor: VectorIndex | None = None
        # Differs from what is kept on disk (a graph read back and not changed since is not written again).
        self.unsaved = True
        self._lock = ReadWriteLock()

    @classmethod
    def from_graph(cls, graph: faiss.IndexIDMap2, dim: int, params: IndexParams) -> VectorIndex:
        """A part around a graph read back from disk (index_snapshot.read_graph); sync() it with the store next."""
        part = cls(dim, params, expected=params.exact_max + 1)
        inner: Any = faiss.downcast_index(graph.index)
        inner.hnsw.efSearch = params.hnsw_ef_search
        inner.hnsw.efConstruction = params.hnsw_ef_construction  # faces added from now on follow the settings
        part._index = graph
        part._ids = {int(i) for i in faiss.vector_to_array(graph.id_map)}
        part.unsaved = False
        return part

    def sync(self, face_ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32]) -> tuple[int, int]:
        """Make the part hold exactly these faces: add the missing, drop the others; (added, dropped)."""
        wanted = {int(i) for i in face_ids}
        with self._lock.write():
            successor = self._successor
            if successor is not None:
                return successor.sync(face_ids, vectors)  # its own lock, taken after this one like every forward
            gone = sorted(self._ids - wanted)
            self._remove_locked(gone)
            new = np.array([int(i) not in self._ids for i in face_ids], dtype=bool)
            self._add_locked(np.asarray(face_ids, dtype=np.int64)[new], np.asarray(vectors, dtype=np.float32)[new])
        return int(new.sum()), len(gone)

    def save(self, path: Path) -> None:
        """Write a graph part to disk (index_snapshot.write_graph); an exact part is rebuilt in no time instead."""
        if not self.approximate:
            raise ValueError("only graph parts are kept on disk")
        with self._lock.read():
            write_graph(self._index, path)
            self.unsaved = False

    @property
    def size(self) -> int:
        """Number of indexed faces."""
        return len(self._ids)

    def add(self, face_ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32]) -> None:
        """Index faces not indexed yet (vectors must be unit-norm, shape (N, dim))."""
        if len(face_ids) == 0:
            return
        vecs = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        with self._lock.write():
            if self._successor is not None:
                successor = self._successor
            else:
                self._add_locked(face_ids, vecs)
                return
        successor.add(face_ids, vecs)

    def _add_locked(self, face_ids: npt.NDArray[np.int64], vecs: npt.NDArray[np.float32]) -> None:
        keep = np.array([int(i) not in self._ids and int(i) not in self._removed for i in face_ids], dtype=bool)
        if not keep.any():
            return
        ids = np.ascontiguousarray(np.asarray(face_ids, dtype=np.int64)[keep])
        self._index.add_with_ids(np.ascontiguousarray(vecs[keep]), ids)
        self._ids.update(int(i) for i in ids)
        self.unsaved = True

    def remove(self, face_ids: Iterable[int]) -> None:
        """Drop faces from the index (those absent are ignored)."""
        face_ids = list(face_ids)
        with self._lock.write():
            if self._successor is not None:
                successor = self._successor
            else:
                self._remove_locked(face_ids)
                return
        successor.remove(face_ids)

    def _remove_locked(self, face_ids: list[int]) -> None:
        present = [int(i) for i in face_ids if int(i) in self._ids]
        if not present:
            return
        self._ids.difference_update(present)
        self.unsaved = True
        if self.approximate:
            self._removed.update(present)
            batch = faiss.IDSelectorBatch(np.fromiter(self._removed, dtype=np.int64, count=len(self._removed)))
            self._exclude = (faiss.IDSelectorNot(batch), batch)
        else:
            self._index.remove_ids(np.asarray(present, dtype=np.int64))  # type: ignore[arg-type]

    def snapshot(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The indexed face ids and their vectors (an exact part's; a graph's are not kept apart from it)."""
        if self.approximate:
            raise ValueError("a graph part is rebuilt from the store, not from itself")
        with self._lock.read():
            ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            vectors = self._index.index.reconstruct_n(0, int(self._index.ntotal))
        return ids, np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)

    def retire_into(self, successor: VectorIndex) -> None:
        """Bring successor (built from an earlier snapshot) up to date with this part, then send every later change
        to it. Searches still holding this part keep getting its (exact) answers."""
        with self._lock.write():
            have = successor.ids()
            added = np.fromiter(self._ids - have, dtype=np.int64)
            if added.size:
                vectors = np.stack([self._index.reconstruct(int(i)) for i in added]).astype(np.float32)
                successor.add(added, vectors)
            successor.remove(sorted(have - self._ids))
            self._successor = successor

    def ids(self) -> set[int]:
        """A copy of the indexed face ids."""
        with self._lock.read():
            return set(self._ids)

    def search(self, queries: npt.NDArray[np.float32], k: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Top-k (cosines, face ids) per query, best first; missing hits have id -1."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        with self._lock.read():
            k = max(1, min(k, max(1, self.size)))
            if self._exclude is None:
                scores, ids = self._index.search(q, k)
            else:
                # A fresh parameters object per search: faiss's ID map points its selector at a stack object for
                # the length of a search, so concurrent searches must not share one.
                hnsw_params: Any = faiss.SearchParametersHNSW  # type: ignore[attr-defined]
                params = hnsw_params(sel=self._exclude[0], efSearch=self.params.hnsw_ef_search)
                scores, ids = self._index.search(q, k, params=params)
        return scores, ids


class CollectionIndex:
    """One VectorIndex per collection; a search sees only the collections it is given."""

    def __init__(self, dim: int, params: IndexParams) -> None:
        self.dim = dim
        self.params = params
        self._parts: dict[str, VectorIndex] = {}
        self._lock = ReadWriteLock()
        # Collections whose exact part is being rebuilt as a graph, with the thread doing it.
        self._promotions: dict[str, threading.Thread] = {}
        # Collections whose graph build failed, with their size then: not retried until they have doubled.
        self._failed: dict[str, int] = {}
        # Set when a newer index replaces this one: graphs still being built for it are abandoned.
        self._closed = threading.Event()

    @classmethod
    def build(
        cls,
        dim: int,
        params: IndexParams,
        face_ids: npt.NDArray[np.int64],
        vectors: npt.NDArray[np.float32],
        collections: npt.NDArray[np.str_],
        snapshots: Path | None = None,
        high_water: int = 0,
    ) -> CollectionIndex:
        """An index of every face, each in its collection's part (exact or HNSW by that part's size). With
        snapshots (a model's snapshot directory), a graph kept there is read back and synced instead of rebuilt,
        when it agrees with the store (high_water: the highest face id the store ever gave out)."""
        index = cls(dim, params)
        for name in np.unique(collections):
            mask = collections == name
            part = VectorIndex(dim, params, expected=int(mask.sum()))
            graph = None
            if part.approximate and snapshots is not None:
                graph = read_graph(snapshot_path(snapshots, str(name)), dim, params.hnsw_m)
                if graph is not None and not agrees_with_store(graph, face_ids[mask], vectors[mask], high_water):
                    logger.warning(
                        "collection %r: the graph on disk holds faces or vectors the store does not: rebuilding", name
                    )
                    graph = None
                if graph is not None and removed_share(graph, face_ids[mask]) > params.rebuild_removed_share:
                    # Deleted faces stay in a graph as waypoints; past this share, rebuild to compact it.
                    logger.info("collection %r: many deleted faces in the graph on disk: rebuilding it", name)
                    graph = None
            if graph is not None:
                part = VectorIndex.from_graph(graph, dim, params)
                added, dropped = part.sync(face_ids[mask], vectors[mask])
                logger.info("collection %r: graph read from disk, %d face(s) added, %d left out", name, added, dropped)
            else:
                part.add(face_ids[mask], vectors[mask])
            index._parts[str(name)] = part
        return index

    def sync(
        self, face_ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32], collections: npt.NDArray[np.str_]
    ) -> None:
        """Make the index hold exactly these faces (the store's, now): add the missing, drop the others, in every
        collection; a collection new since gets its part, one gone since loses it."""
        names = {str(n) for n in np.unique(collections)}
        for name in names:
            mask = collections == name
            with self._lock.write():
                part = self._parts.get(name)
                if part is None:
                    part = self._parts[name] = VectorIndex(self.dim, self.params, expected=int(mask.sum()))
            part.sync(face_ids[mask], vectors[mask])
        with self._lock.write():
            for name in set(self._parts) - names:
                del self._parts[name]

    def save(self, snapshots: Path) -> int:
        """Keep every graph part that differs from its copy on disk in a model's snapshot directory; returns how
        many were written."""
        with self._lock.read():
            parts = [(name, part) for name, part in self._parts.items() if part.approximate and part.unsaved]
        for name, part in parts:
            part.save(snapshot_path(snapshots, name))
        return len(parts)

    @property
    def size(self) -> int:
        """Faces indexed in every collection."""
        with self._lock.read():
            return sum(p.size for p in self._parts.values())

    def size_of(self, collections: Iterable[str] | None) -> int:
        """Faces indexed in the given collections (None: all)."""
        with self._lock.read():
            if collections is None:
                return sum(p.size for p in self._parts.values())
            return sum(self._parts[c].size for c in collections if c in self._parts)

    def add(self, collection: str, face_ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32]) -> None:
        """Index faces of one collection."""
        with self._lock.write():
            part = self._parts.get(collection)
            if part is None:
                part = self._parts[collection] = VectorIndex(self.dim, self.params)
        part.add(face_ids, vectors)
        if not part.approximate and part.size > self.params.exact_max:
            self._promote(collection, part)

    def _promote(self, collection: str, part: VectorIndex) -> None:
        """Rebuild an exact part that outgrew exact_max as a graph, in the background (once at a time)."""
        with self._lock.write():
            if collection in self._promotions or self._parts.get(collection) is not part or self._closed.is_set():
                return
            if part.size < 2 * self._failed.get(collection, 0):
                return
            thread = threading.Thread(
                target=self._build_graph, args=(collection, part), name=f"index-graph-{collection}", daemon=True
            )
            self._promotions[collection] = thread
        thread.start()

    def _build_graph(self, collection: str, part: VectorIndex) -> None:
        try:
            ids, vectors = part.snapshot()
            logger.info("collection %r outgrew exact search (%d faces): building its HNSW graph", collection, len(ids))
            graph = VectorIndex(self.dim, self.params, expected=len(ids))
            for start in range(0, len(ids), _BUILD_CHUNK):
                if self._closed.is_set():
                    logger.info("collection %r: graph build abandoned (the index was replaced)", collection)
                    return
                graph.add(ids[start : start + _BUILD_CHUNK], vectors[start : start + _BUILD_CHUNK])
            part.retire_into(graph)
            with self._lock.write():
                if self._parts.get(collection) is part:
                    self._parts[collection] = graph
            logger.info("collection %r now searched through its HNSW graph (%d faces)", collection, graph.size)
        except Exception:
            logger.exception("building the HNSW graph of collection %r failed; its search stays exact", collection)
            with self._lock.write():
                self._failed[collection] = part.size
        finally:
            with self._lock.write():
                self._promotions.pop(collection, None)

    def close(self) -> None:
        """This index is no longer served: abandon the graphs still being built for it."""
        self._closed.set()

    def wait_for_graphs(self, timeout_s: float | None = None) -> None:
        """Wait until every graph being built in the background is in place (or timeout_s passes)."""
        with self._lock.read():
            threads = list(self._promotions.values())
        for thread in threads:
            thread.join(timeout_s)

    def remove(self, face_ids: list[int], collection: str | None = None) -> None:
        """Drop faces (from one collection when known, else from wherever they are)."""
        with self._lock.read():
            parts = list(self._parts.values()) if collection is None else [self._parts.get(collection)]
        for part in parts:
            if part is not None:
                part.remove(face_ids)

    def search(
        self, query: npt.NDArray[np.float32], k: int, collections: Iterable[str] | None
    ) -> list[tuple[float, int]]:
        """Top-k (cosine, face id) over the given collections (None: all), best first."""
        with self._lock.read():
            names = list(self._parts) if collections is None else [c for c in collections if c in self._parts]
            parts = [self._parts[c] for c in names]
        found: list[tuple[float, int]] = []
        for part in parts:
            if part.size == 0:
                continue
            scores, ids = part.search(query[None, :], k)
            found.extend((float(s), int(i)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0)
        found.sort(key=lambda p: p[0], reverse=True)
        return found[:k]
