"""The search index: a faiss inner-product index over unit embeddings, a projection of the SQLite gallery.

It is rebuilt from the store at start and after a model switch, and updated under a write lock after
each committed enrollment or deletion.
"""

from __future__ import annotations

import faiss
import numpy as np
import numpy.typing as npt

from service.rwlock import ReadWriteLock


class VectorIndex:
    """Exact cosine search (inner product of unit vectors) keyed by face id."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._lock = ReadWriteLock()

    @property
    def size(self) -> int:
        """Number of indexed faces."""
        return int(self._index.ntotal)

    def add(self, face_ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32]) -> None:
        """Index faces (vectors must be unit-norm, shape (N, dim))."""
        if len(face_ids) == 0:
            return
        vecs = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        with self._lock.write():
            self._index.add_with_ids(vecs, np.ascontiguousarray(face_ids, dtype=np.int64))

    def remove(self, face_ids: list[int]) -> None:
        """Drop faces from the index."""
        if not face_ids:
            return
        with self._lock.write():
            self._index.remove_ids(np.asarray(face_ids, dtype=np.int64))  # type: ignore[arg-type]

    def search(self, queries: npt.NDArray[np.float32], k: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Top-k (cosines, face ids) per query, best first; missing hits have id -1."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        with self._lock.read():
            k = max(1, min(k, int(self._index.ntotal)))
            scores, ids = self._index.search(q, k)
        return scores, ids
