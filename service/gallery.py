"""The gallery: the store (SQLite or PostgreSQL) plus the in-process projection of the active model's embeddings.

Writes go to the store first (committed), then to the index. Over PostgreSQL other replicas write too: their
committed changes are read back in order (``follow``) and applied to this process's index. Enrollment holds
the switch lock shared and a model switch holds it exclusively for its final catch-up, so no face can be
embedded by the old model and miss the new model's index.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facepipe.crops import FaceChip
from facepipe.decode import decode_image, encode_jpeg, encode_png
from facepipe.detection import Detection
from service.config import Settings
from service.error_catalogue import ServiceError
from service.gallery_records import DEFAULT_COLLECTION, GalleryRepository, IdentityRow, NewFace, StoredChip, VectorSet
from service.index_snapshot import INDEX_DIR, keep_only
from service.metrics import Metrics
from service.pipeline import EmbeddedFace, FacePipeline
from service.runtime import ModelRuntime
from service.rwlock import ReadWriteLock
from service.vector_index import CollectionIndex, IndexParams

logger = logging.getLogger(__name__)

_REEMBED_BATCH = 64
# Chips are our own encodings of at most 224 x 224 pixels; generous limits just guard against corruption.
_CHIP_MAX_BYTES = 8 * 1024 * 1024
_CHIP_MAX_PIXELS = 1024 * 1024

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class FaceHit:
    """One search result: the best face of an identity and its cosine to the query."""

    identity_id: str
    name: str
    face_id: int
    cosine: float


class Gallery:
    """Identities and faces, durable in SQLite and searchable in memory."""

    def __init__(self, store: GalleryRepository, settings: Settings, metrics: Metrics, shared: bool = False) -> None:
        self.store = store
        # Other processes write to the same store (PostgreSQL): this one follows their changes and model switches.
        self.shared = shared
        self.settings = settings
        self.metrics = metrics
        self.index: CollectionIndex | None = None
        self.model_id: str | None = None
        self.switch_lock = ReadWriteLock()
        self.index_params = IndexParams(
            exact_max=settings.exact_search_max_faces,
            hnsw_m=settings.hnsw_m,
            hnsw_ef_construction=settings.hnsw_ef_construction,
            hnsw_ef_search=settings.hnsw_ef_search,
            rebuild_removed_share=settings.index_rebuild_removed_share,
        )
        # The newest change of the shared store that this process's index reflects.
        self.seen_change = 0
        # Faces another replica enrolled that have no vector of this process's model yet (it enrolled them just
        # before following a switch, and embeds them when it does): face id -> collection, retried at each poll.
        self._pending: dict[int, str] = {}
        self._follow_lock = threading.Lock()
        self._save_lock = threading.Lock()

    # --- start-up and model switches ---------------------------------------------------------------------
    def attach(
        self,
        runtime: ModelRuntime,
        pipeline: FacePipeline,
        progress: Progress | None = None,
        shadow: CollectionIndex | None = None,
    ) -> None:
        """Serve runtime's model: embed any face it lacks from its chip, rebuild the index (or bring a shadow index
        built beforehand by build_index up to date with the store), pin the model."""
        self.reembed_missing(runtime, pipeline, progress)
        with self._follow_lock:
            # Read the change number first: changes committed while the index builds are applied again, harmlessly.
            seen = self.store.last_change()
            if shadow is None:
                index = self.build_index(runtime)
            else:
                # Built while the previous model served: add the faces enrolled since, drop those deleted since.
                vs = self.store.vectors(runtime.model_id, runtime.dim)
                assert vs.collections is not None
                shadow.sync(vs.face_ids, vs.vectors, vs.collections)
                index = shadow
            retired, self.index, self.model_id, self.seen_change = self.index, index, runtime.model_id, seen
            self._pending = {}
        if retired is not None:
            retired.close()  # stops any graph it was still building for the model left behind
        # In the background: a model switch calls this under the switch lock, and a million faces take seconds.
        threading.Thread(target=self.save_index, name="index-snapshot", daemon=True).start()
        if self.store.pinned_model() != runtime.model_id:
            self.store.pin_model(runtime.model_id)
        self.metrics.gallery_faces.set(index.size)

    def reembed_missing(self, runtime: ModelRuntime, pipeline: FacePipeline, progress: Progress | None = None) -> int:
        """Embed, with runtime's model, every stored face that has no embedding for it yet."""
        missing, no_chip = self.store.count_missing(runtime.model_id)
        if no_chip:
            raise ServiceError(
                "model_load_failed",
                f"{no_chip} gallery face(s) have no stored chip, so model {runtime.model_id!r} cannot re-embed them "
                "(crops were not kept: DPRIME_STORE_CROPS=false); keep the previous model or re-enroll them",
                {"faces_without_chip": no_chip},
            )
        done = 0
        while True:
            chips = self.store.chips_missing(runtime.model_id, _REEMBED_BATCH)
            if not chips:
                break
            mus, kappas = pipeline.embed_chips([self._decode_chip(c) for c in chips], runtime)
            self.store.put_embeddings(runtime.model_id, [c.face_id for c in chips], mus, kappas)
            done += len(chips)
            self.metrics.reembedded.inc(len(chips))
            if progress is not None:
                progress(done, missing)
        if done:
            logger.info("re-embedded %d gallery face(s) with model %s", done, runtime.model_id)
        return done

    def build_index(self, runtime: ModelRuntime) -> CollectionIndex:
        """A fresh index of runtime's embeddings from the store (graphs kept on disk are read back and synced)."""
        vs = self.store.vectors(runtime.model_id, runtime.dim)
        assert vs.collections is not None
        snapshots = self._snapshot_dir(runtime.model_id)
        high_water = self.store.face_id_high_water() if snapshots is not None else 0
        return CollectionIndex.build(
            runtime.dim, self.index_params, vs.face_ids, vs.vectors, vs.collections, snapshots, high_water
        )

    def _snapshot_dir(self, model_id: str) -> Path | None:
        return self.settings.data_dir / INDEX_DIR / model_id if self.settings.index_snapshots else None

    def save_index(self) -> None:
        """Keep the serving index's graphs on disk for the next start (a failure costs only a rebuild then); one save
        at a time, so shutdown waits for one still running in the background."""
        with self._save_lock:
            with self._follow_lock:
                index, model_id = self.index, self.model_id
            snapshots = self._snapshot_dir(model_id) if model_id is not None else None
            if index is None or snapshots is None:
                return
            try:
                written = index.save(snapshots)
                keep_only(snapshots)
            except Exception as exc:  # noqa: BLE001 - a snapshot is a cache: never let it stop a switch or shutdown
                logger.warning("could not keep the search index on disk (%s); the next start rebuilds it", exc)
                return
        if written:
            logger.info("kept %d HNSW graph(s) of model %s in %s", written, model_id, snapshots)

    def follow(self) -> int:
        """Apply the changes other processes committed since the last call; returns how many were applied."""
        with self._follow_lock:
            index, model_id = self.index, self.model_id
            if index is None or model_id is None:
                return 0
            changes = self.store.changes_after(self.seen_change)
            for change in changes:
                if change.op == "add":
                    self._pending.update(dict.fromkeys(change.face_ids, change.collection))
                else:
                    index.remove(change.face_ids, change.collection)
                    for face_id in change.face_ids:
                        self._pending.pop(face_id, None)
                self.seen_change = change.seq
            if self._pending:
                self._index_pending(index, model_id)
        if changes:
            self.metrics.gallery_faces.set(index.size)
        return len(changes)

    def _index_pending(self, index: CollectionIndex, model_id: str) -> None:
        vs = self.store.vectors_of_faces(model_id, index.dim, list(self._pending))
        assert vs.collections is not None
        for collection in set(vs.collections.tolist()):
            mask = vs.collections == collection
            index.add(str(collection), vs.face_ids[mask], vs.vectors[mask])
        for face_id in vs.face_ids.tolist():
            self._pending.pop(int(face_id), None)
        if self._pending:  # still without a vector of this model: gone, or waiting for their replica to embed them
            alive = self.store.face_owners(list(self._pending))
            self._pending = {f: c for f, c in self._pending.items() if f in alive}

    @staticmethod
    def _decode_chip(chip: StoredChip) -> FaceChip:
        image = decode_image(chip.data, _CHIP_MAX_BYTES, _CHIP_MAX_PIXELS)
        det = Detection(
            box=np.asarray(chip.box, dtype=np.float64),
            score=1.0,
            landmarks=np.asarray(chip.landmarks, dtype=np.float64),
        )
        return FaceChip(image=image, detection=det, scale=chip.scale)

    # --- enrollment ---------------------------------------------------------------------------------------
    def _new_face(self, face: EmbeddedFace) -> NewFace:
        chip = face.chip if self.settings.store_crops else None
        data = fmt = None
        if chip is not None:
            if self.settings.crop_format == "png":
                data, fmt = encode_png(chip.image), "png"
            else:
                data, fmt = encode_jpeg(chip.image, self.settings.crop_quality), "jpeg"
        det = face.detection
        return NewFace(
            mu=face.mu.astype(np.float32),
            kappa=face.kappa,
            det_score=det.score if det is not None else None,
            chip=data,
            chip_format=fmt,
            chip_box=chip.detection.box.tolist() if chip is not None else None,
            chip_landmarks=chip.detection.landmarks.tolist() if chip is not None else None,
            chip_scale=chip.scale if chip is not None else None,
        )

    def enroll(
        self,
        name: str,
        metadata: dict[str, Any],
        faces: list[EmbeddedFace],
        runtime: ModelRuntime,
        collection: str = DEFAULT_COLLECTION,
    ) -> tuple[IdentityRow, list[int]]:
        """Store a new identity with its faces in a collection (committed), then index them."""
        self._check_writable(runtime)
        row, face_ids = self.store.create_identity(
            name, metadata, [self._new_face(f) for f in faces], runtime.model_id, collection
        )
        self._index_faces(collection, face_ids, faces)
        return row, face_ids

    def add_faces(self, identity_id: str, faces: list[EmbeddedFace], runtime: ModelRuntime) -> list[int]:
        """Store more faces of an existing identity (committed), then index them."""
        self._check_writable(runtime)
        row = self.store.get_identity(identity_id)
        face_ids = self.store.add_faces(identity_id, [self._new_face(f) for f in faces], runtime.model_id)
        if face_ids is None or row is None:
            raise ServiceError("unknown_identity", f"no identity {identity_id!r}", {"identity_id": identity_id})
        self._index_faces(row.collection, face_ids, faces)
        return face_ids

    def _index_faces(self, collection: str, face_ids: list[int], faces: list[EmbeddedFace]) -> None:
        if self.index is None:
            return
        vectors = np.stack([f.mu for f in faces]).astype(np.float32)
        self.index.add(collection, np.asarray(face_ids, dtype=np.int64), vectors)
        self.metrics.gallery_faces.set(self.index.size)

    def _check_model(self, runtime: ModelRuntime) -> None:
        if self.model_id != runtime.model_id:
            raise ServiceError(
                "model_switch_in_progress",
                "the gallery is switching models; retry shortly",
                headers={"Retry-After": "1"},
            )

    def _check_writable(self, runtime: ModelRuntime) -> None:
        """Refuse to store faces embedded by a model the shared gallery has just left (this replica follows soon)."""
        self._check_model(runtime)
        if self.shared and self.store.pinned_model() not in (None, runtime.model_id):
            raise ServiceError(
                "model_switch_in_progress",
                "another replica switched the gallery's model; this one follows within a second, retry shortly",
                headers={"Retry-After": "1"},
            )

    def delete(self, identity_id: str) -> int:
        """Delete an identity, its faces, chips and vectors; returns how many faces went."""
        face_ids = self.store.delete_identity(identity_id)
        if face_ids is None:
            raise ServiceError("unknown_identity", f"no identity {identity_id!r}", {"identity_id": identity_id})
        if self.index is not None:
            self.index.remove(face_ids)
            self.metrics.gallery_faces.set(self.index.size)
        return len(face_ids)

    def delete_collection(self, collection: str) -> tuple[int, int]:
        """Delete every identity of a collection with its faces, chips and vectors; returns (identities, faces)."""
        n_ids, face_ids = self.store.delete_collection(collection)
        if n_ids == 0:
            raise ServiceError("unknown_collection", f"no collection {collection!r}", {"collection": collection})
        if self.index is not None:
            self.index.remove(face_ids, collection)
            self.metrics.gallery_faces.set(self.index.size)
        return n_ids, len(face_ids)

    # --- queries -----------------------------------------------------------------------------------------
    def search(
        self, mu: np.ndarray, k: int, runtime: ModelRuntime, collections: Collection[str] | None = None
    ) -> list[FaceHit]:
        """Top-k identities of the given collections (None: all) by their best face's cosine to mu (embedded by
        runtime's model).

        Raises:
            ServiceError: ``model_switch_in_progress`` when the gallery moved to another model after mu was
                embedded (the vectors would not be comparable).
        """
        with self.switch_lock.read():
            self._check_model(runtime)
            index = self.index
            if index is None or index.size == 0:
                return []
            # Fetch more faces than identities wanted: one identity may hold several of the nearest faces.
            pairs = index.search(mu.astype(np.float32), k * 4 + 8, collections)
        owners = self.store.face_owners([i for _, i in pairs])
        best: dict[str, FaceHit] = {}
        for score, face_id in pairs:
            if face_id not in owners:
                continue  # deleted between the search and the lookup
            identity_id, name = owners[face_id]
            if identity_id not in best:
                best[identity_id] = FaceHit(identity_id=identity_id, name=name, face_id=face_id, cosine=score)
        return sorted(best.values(), key=lambda h: h.cosine, reverse=True)[:k]

    def identity_vectors(self, identity_id: str, runtime: ModelRuntime) -> VectorSet:
        """The active model's vectors of one identity's faces."""
        vs = self.store.vectors(runtime.model_id, runtime.dim, identity_id=identity_id)
        if vs.face_ids.size == 0 and self.store.get_identity(identity_id) is None:
            raise ServiceError("unknown_identity", f"no identity {identity_id!r}", {"identity_id": identity_id})
        return vs
