"""Embedding the images of a pair set with either a training checkpoint (torch) or an exported ONNX model.

Both paths crop faces with facepipe exactly as the service does, from detections computed once per
image set (and cached on disk, keyed by the images' fingerprint and the detector settings).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from facecore.alignment import template_points
from facecore.manifest import PreprocessSpec
from facepipe.crops import crop_face, resize_aligned
from facepipe.decode import RgbImage
from facepipe.detection import Detection
from facepipe.detectors import DetectorSpec
from facepipe.tensors import to_input_tensor
from training.faces import find_faces, load_image

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
    """One detection per image (a centred fallback where none was found) and which images fell back."""

    items: list[Detection]
    fallback: npt.NDArray[np.bool_]


def fallback_detection(image: RgbImage) -> Detection:
    """A face assumed centred (the usual convention for undetected protocol images): the template over the
    central square, box the middle 60 %."""
    h, w = image.shape[:2]
    side = min(h, w) * 0.6
    x0, y0 = (w - side) / 2, (h - side) / 2
    landmarks = template_points("arcface_112") / 112.0 * side + [x0, y0]
    return Detection(box=np.array([x0, y0, x0 + side, y0 + side]), score=0.0, landmarks=landmarks)


def _cache_key(sources: Sequence[Path | bytes], spec: DetectorSpec) -> str:
    digest = hashlib.sha256(spec.model_dump_json().encode())
    for src in sources:
        digest.update(src if isinstance(src, bytes) else str(Path(src).resolve()).encode())
        if not isinstance(src, bytes):
            digest.update(str(Path(src).stat().st_size).encode())
    return digest.hexdigest()[:20]


def detect_all(
    sources: Sequence[Path | bytes], spec: DetectorSpec, cache_dir: Path | None = None, workers: int | None = None
) -> Detections:
    """The largest face of every image, from the cache when this image list was seen with this detector."""
    cache = Path(cache_dir) / f"detections_{_cache_key(sources, spec)}.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        data = np.load(cache)
        items = [
            Detection(box=b, score=float(s), landmarks=lm)
            for b, s, lm in zip(data["boxes"], data["scores"], data["landmarks"], strict=True)
        ]
        return Detections(items, data["fallback"])
    items, fallback = [], np.zeros(len(sources), dtype=bool)
    for i, finding in find_faces(sources, spec, workers, desc="detect faces"):
        if finding.detection is None:
            items.append(fallback_detection(load_image(sources[i])))
            fallback[i] = True
        else:
            items.append(finding.detection)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            cache,
            boxes=np.stack([d.box for d in items]),
            scores=np.array([d.score for d in items]),
            landmarks=np.stack([d.landmarks for d in items]),
            fallback=fallback,
        )
    if fallback.any():
        logger.warning("%d of %d images had no detected face; a centred crop stands in", fallback.sum(), len(sources))
    return Detections(items, fallback)


def embed_images(
    sources: Sequence[Path | bytes], embedder: BatchEmbedder, detections: Detections | None, flip: bool = False
) -> FloatArray:
    """Raw embeddings (N, D) of every image; with ``flip``, the mean of the image's and its mirror's."""
    spec = embedder.preprocess
    out = []
    for start in tqdm(range(0, len(sources), BATCH), desc="embed", disable=None):
        crops = []
        for i in range(start, min(start + BATCH, len(sources))):
            image = load_image(sources[i])
            if detections is None:
                crops.append(resize_aligned(image, spec))
            else:
                crops.append(crop_face(image, detections.items[i], spec))
        x = to_input_tensor(crops, spec)
        e = embedder(x)
        if flip:
            e = 0.5 * (e + embedder(np.ascontiguousarray(x[..., ::-1])))
        out.append(e)
    return np.concatenate(out).astype(np.float32)


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
