"""The search index: a projection of the gallery's active-model embeddings, one per collection.

Up to ``exact_max`` faces a collection is searched exactly (faiss flat inner product over unit vectors); past it,
rebuilt as an HNSW graph, which answers in well under a millisecond at the cost of a recall a little below 1
(bench/search.py measures both). It is rebuilt from the store at start and after a model switch, and updated
under a write lock after each committed enrollment or deletion (this process's or, over PostgreSQL, another
replica's): adding a face already present or removing one absent changes nothing, so a change may arrive twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from service.rwlock import ReadWriteLock


@dataclass(frozen=True)
class IndexParams:
    """How a collection's index is built (from settings)."""

    exact_max: int
    hnsw_m: int
    hnsw_ef_construction: int
    hnsw_ef_search: int


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
        self._exclude: Any = None  # faiss.SearchParametersHNSW (absent from faiss's type stubs)
        self._lock = ReadWriteLock()

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
            keep = np.array([int(i) not in self._ids and int(i) not in self._removed for i in face_ids], dtype=bool)
            if not keep.any():
                return
            ids = np.ascontiguousarray(np.asarray(face_ids, dtype=np.int64)[keep])
            self._index.add_with_ids(np.ascontiguousarray(vecs[keep]), ids)
            self._ids.update(int(i) for i in ids)

    def remove(self, face_ids: Iterable[int]) -> None:
        """Drop faces from the index (those absent are ignored)."""
        with self._lock.write():
            present = [int(i) for i in face_ids if int(i) in self._ids]
            if not present:
                return
            self._ids.difference_update(present)
            if self.approximate:
                self._removed.update(present)
                self._exclude = self._excluding(self._removed)
            else:
                self._index.remove_ids(np.asarray(present, dtype=np.int64))  # type: ignore[arg-type]

    def search(self, queries: npt.NDArray[np.float32], k: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Top-k (cosines, face ids) per query, best first; missing hits have id -1."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        with self._lock.read():
            k = max(1, min(k, max(1, self.size)))
            if self._exclude is None:
                scores, ids = self._index.search(q, k)
            else:
                scores, ids = self._index.search(q, k, params=self._exclude)
        return scores, ids

    def _excluding(self, removed: set[int]) -> Any:
        """HNSW search parameters that leave the removed faces out of the results."""
        batch = faiss.IDSelectorBatch(np.fromiter(removed, dtype=np.int64, count=len(removed)))
        hnsw_params: Any = faiss.SearchParametersHNSW  # type: ignore[attr-defined]
        params = hnsw_params(sel=faiss.IDSelectorNot(batch), efSearch=self.params.hnsw_ef_search)
        # faiss keeps raw pointers to the selectors: hold them for as long as the parameters live.
        params.keep = (batch, params.sel)
        return params


class CollectionIndex:
    """One VectorIndex per collection; a search sees only the collections it is given."""

    def __init__(self, dim: int, params: IndexParams) -> None:
        self.dim = dim
        self.params = params
        self._parts: dict[str, VectorIndex] = {}
        self._lock = ReadWriteLock()

    @classmethod
    def build(
        cls,
        dim: int,
        params: IndexParams,
        face_ids: npt.NDArray[np.int64],
        vectors: npt.NDArray[np.float32],
        collections: npt.NDArray[np.str_],
    ) -> CollectionIndex:
        """An index of every face, each in its collection's part (exact or HNSW by that part's size)."""
        index = cls(dim, params)
        for name in np.unique(collections):
            mask = collections == name
            part = VectorIndex(dim, params, expected=int(mask.sum()))
            part.add(face_ids[mask], vectors[mask])
            index._parts[str(name)] = part
        return index

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
