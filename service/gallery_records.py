"""What the gallery stores and hands back, and the repository both backends (SQLite, PostgreSQL) implement."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

DEFAULT_COLLECTION = "default"


@dataclass(frozen=True)
class NewFace:
    """A face to store: unit direction mu (D,), kappa, and optionally its chip for re-embedding."""

    mu: npt.NDArray[np.float32]
    kappa: float
    det_score: float | None
    chip: bytes | None = None
    chip_format: str | None = None
    chip_box: list[float] | None = None
    chip_landmarks: list[list[float]] | None = None
    chip_scale: float | None = None


@dataclass(frozen=True)
class FaceRow:
    """A stored face (without its chip bytes)."""

    face_id: int
    created: str
    det_score: float | None
    kappa: float | None
    has_chip: bool


@dataclass(frozen=True)
class IdentityRow:
    """A stored identity with its faces."""

    rowid: int
    identity_id: str
    name: str
    metadata: dict[str, Any]
    created: str
    faces: list[FaceRow]
    collection: str = DEFAULT_COLLECTION


@dataclass(frozen=True)
class CollectionRow:
    """A collection and how much it holds."""

    name: str
    identities: int
    faces: int


@dataclass(frozen=True)
class StoredChip:
    """A face chip as stored, for re-embedding."""

    face_id: int
    data: bytes
    fmt: str
    box: list[float]
    landmarks: list[list[float]]
    scale: float


@dataclass(frozen=True)
class VectorSet:
    """Embeddings of one model: face ids (N,), unit vectors (N, D) float32, kappas (N,), each face's collection."""

    face_ids: npt.NDArray[np.int64]
    vectors: npt.NDArray[np.float32]
    kappas: npt.NDArray[np.float64]
    collections: npt.NDArray[np.str_] | None = None


@dataclass(frozen=True)
class GalleryChange:
    """One committed change other replicas must apply to their in-process index."""

    seq: int
    op: str
    face_ids: list[int]
    collection: str


class GalleryRepository(Protocol):
    """The gallery's storage, whatever the backend."""

    def close(self) -> None: ...
    def backup(self, dest: Path) -> None: ...
    def pinned_model(self) -> str | None: ...
    def pin_model(self, model_id: str) -> None: ...
    def create_identity(
        self,
        name: str,
        metadata: dict[str, Any],
        faces: Sequence[NewFace],
        model_id: str,
        collection: str = DEFAULT_COLLECTION,
    ) -> tuple[IdentityRow, list[int]]: ...
    def add_faces(self, identity_id: str, faces: Sequence[NewFace], model_id: str) -> list[int] | None: ...
    def get_identity(self, identity_id: str, model_id: str | None = None) -> IdentityRow | None: ...
    def list_identities(
        self,
        limit: int,
        after_rowid: int = 0,
        model_id: str | None = None,
        name_contains: str | None = None,
        collections: Collection[str] | None = None,
    ) -> list[IdentityRow]: ...
    def delete_identity(self, identity_id: str) -> list[int] | None: ...
    def delete_collection(self, collection: str) -> tuple[int, list[int]]: ...
    def collections(self) -> list[CollectionRow]: ...
    def counts(self) -> tuple[int, int]: ...
    def vectors(self, model_id: str, dim: int, identity_id: str | None = None) -> VectorSet: ...
    def vectors_of_faces(self, model_id: str, dim: int, face_ids: Sequence[int]) -> VectorSet: ...
    def chips_missing(self, model_id: str, limit: int) -> list[StoredChip]: ...
    def count_missing(self, model_id: str) -> tuple[int, int]: ...
    def put_embeddings(
        self, model_id: str, face_ids: Sequence[int], mus: npt.NDArray[np.float64], kappas: npt.NDArray[np.float64]
    ) -> None: ...
    def face_owners(self, face_ids: Sequence[int]) -> dict[int, tuple[str, str]]: ...
    def face_kappa(self, face_id: int, model_id: str) -> float | None: ...
    def labelled_vectors(self, model_id: str, dim: int) -> tuple[VectorSet, npt.NDArray[np.str_]]: ...
    def changes_after(self, seq: int) -> list[GalleryChange]: ...
    def last_change(self) -> int: ...
    def face_id_high_water(self) -> int: ...


def identity_from_rows(row: Sequence[Any], face_rows: Iterable[Sequence[Any]]) -> IdentityRow:
    """An identity from its row (rowid, id, name, metadata, created, collection) and its faces' rows (id, created,
    det_score, kappa, has_chip), as both backends select them."""
    faces = [
        FaceRow(face_id=int(f[0]), created=str(f[1]), det_score=f[2], kappa=f[3], has_chip=bool(f[4]))
        for f in face_rows
    ]
    return IdentityRow(
        rowid=int(row[0]),
        identity_id=str(row[1]),
        name=str(row[2]),
        metadata=json.loads(row[3]),
        created=str(row[4]),
        faces=faces,
        collection=str(row[5]),
    )
