"""Embedding image sets through facepipe's face path with a training checkpoint (torch) or an exported ONNX model.

Detections are computed once per image set (both cores, cached on disk by the images' fingerprint and the detector
settings) and faces are cropped and embedded by the same facepipe functions the service calls. An image in which no
face is found is left out and counted, as the service would answer ``no_face`` for it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from facecore.manifest import PreprocessSpec
from facepipe.crops import resize_aligned
from facepipe.detection import Detection
from facepipe.detectors import DetectorSpec
from facepipe.facepath import EmbedFn, FacePath
from facepipe.tensors import to_input_tensor
from training.faces import LIMITS, find_faces, load_image

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
BATCH = 32


class BatchEmbedder(Protocol):
    """Raw embeddings from preprocessed tensors."""

    preprocess: PreprocessSpec

    def __call__(self, batch: npt.NDArray[np.float32]) -> FloatArray:
        """(N, 3, H, W) -> (N, D) raw embeddings."""
        ...


@dataclass(frozen=True)
class Detections:
    """The kept face of every image, None where the face path found none (or could not read the image)."""

    items: list[Detection | None]

    @property
    def found(self) -> npt.NDArray[np.bool_]:
        """Which images have a face."""
        return np.array([d is not None for d in self.items], dtype=bool)


class _NoDetector:
    """FacePath's detector slot when detections come from the cache (never called)."""

    name = "cached"

    def detect(self, image: npt.NDArray[np.uint8]) -> list[Detection]:
        raise RuntimeError("detections are read from the cache")


def _cache_key(sources: Sequence[Path | bytes], spec: DetectorSpec) -> str:
    digest = hashlib.sha256(b"facepath-v2" + spec.model_dump_json().encode())
    for src in sources:
        digest.update(src if isinstance(src, bytes) else str(Path(src).resolve()).encode())
        if not isinstance(src, bytes):
            digest.update(str(Path(src).stat().st_size).encode())
    return digest.hexdigest()[:20]


def detect_all(
    sources: Sequence[Path | bytes], spec: DetectorSpec, cache_dir: Path | None = None, workers: int | None = None
) -> Detections:
    """The face the service would keep in every image, from the cache when this image list was seen with spec."""
    cache = Path(cache_dir) / f"detections_{_cache_key(sources, spec)}.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        data = np.load(cache)
        items: list[Detection | None] = [
            Detection(box=b, score=float(s), landmarks=lm) if ok else None
            for b, s, lm, ok in zip(data["boxes"], data["scores"], data["landmarks"], data["found"], strict=True)
        ]
        return Detections(items)
    items = []
    for _, finding in find_faces(sources, spec, workers, desc="detect faces"):
        items.append(finding.detection)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        blank = Detection(box=np.zeros(4), score=0.0, landmarks=np.zeros((5, 2)))
        filled = [d or blank for d in items]
        np.savez(
            cache,
            boxes=np.stack([d.box for d in filled]),
            scores=np.array([d.score for d in filled]),
            landmarks=np.stack([d.landmarks for d in filled]),
            found=np.array([d is not None for d in items]),
        )
    missing = sum(d is None for d in items)
    if missing:
        logger.warning("%d of %d images have no face the service would use; they are left out", missing, len(items))
    return Detections(items)


def mirrored(embed: EmbedFn) -> EmbedFn:
    """An embed function that averages each face's raw embedding with its mirror's."""

    def both(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] = 0.5 * (embed(x) + embed(np.ascontiguousarray(x[..., ::-1])))
        return out

    return both


def embed_images(
    sources: Sequence[Path | bytes], embedder: BatchEmbedder, detections: Detections | None, flip: bool = False
) -> FloatArray:
    """Raw embeddings (N, D) of every image, NaN rows where no face was found; ``flip`` adds mirror TTA."""
    spec = embedder.preprocess
    embed: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]] = mirrored(embedder) if flip else embedder
    path = FacePath(_NoDetector(), LIMITS)
    keep = np.arange(len(sources)) if detections is None else np.nonzero(detections.found)[0]
    out: FloatArray | None = None
    for start in tqdm(range(0, keep.size, BATCH), desc="embed", disable=None):
        idx = keep[start : start + BATCH]
        images = [load_image(sources[i]) for i in idx]
        if detections is None:
            e = embed(to_input_tensor([resize_aligned(img, spec) for img in images], spec))
        else:
            dets = [detections.items[i] for i in idx]
            e = path.embed_detected(images, [d for d in dets if d is not None], spec, embed)
        if out is None:
            out = np.full((len(sources), e.shape[1]), np.nan, dtype=np.float32)
        out[idx] = e
    if out is None:
        raise ValueError(f"no face found in any of the {len(sources)} images")
    return out


class OnnxBatchEmbedder:
    """An exported model directory through facepipe's onnxruntime embedder."""

    def __init__(self, model_dir: Path, providers: list[str] | None = None) -> None:
        from facecore.manifest import load_manifest
        from facepipe.embedder import OnnxEmbedder

        manifest = load_manifest(Path(model_dir))
        self.manifest = manifest
        self.preprocess = manifest.preprocess
        self._embedder = OnnxEmbedder(Path(model_dir), manifest, providers=providers)

    def __call__(self, batch: npt.NDArray[np.float32]) -> FloatArray:
        """Raw embeddings."""
        return self._embedder.embed(np.ascontiguousarray(batch, dtype=np.float32))


def found_rows(embeddings: npt.NDArray[np.floating]) -> npt.NDArray[np.bool_]:
    """Which rows of embed_images' output hold a face (the others are NaN)."""
    return np.asarray(np.isfinite(embeddings).all(axis=1), dtype=bool)
