"""Detection over many images with both cores, shared by `dprime align`, evaluation and calibration.

Workers each build their own detector (one onnxruntime thread apiece) and run facepipe's face path (decode,
detect, keep the largest face, as the service's default policy does); they return detections, never pixels, so
the parent can crop whichever way a model's manifest asks.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from facepipe.decode import RgbImage, decode_image
from facepipe.detection import Detection, FaceDetector
from facepipe.detectors import DetectorSpec, create_detector
from facepipe.errors import FacepipeError, NoFaceError
from facepipe.facepath import FacePath, ImageLimits

logger = logging.getLogger(__name__)

# Research photos can be large; these limits only guard against corrupt files.
LIMITS = ImageLimits(max_bytes=64 * 1024 * 1024, max_pixels=80_000_000)

Outcome = Literal["ok", "no_face", "several_faces", "unreadable"]


@dataclass(frozen=True)
class FaceFinding:
    """What detection found in one image; ``detection`` is the chosen face (largest) when there is one."""

    outcome: Outcome
    detection: Detection | None
    n_faces: int
    message: str = ""


_worker_detector: FaceDetector | None = None


def _init_worker(spec_json: str) -> None:
    global _worker_detector
    _worker_detector = create_detector(DetectorSpec.model_validate_json(spec_json), intra_op_threads=1)


def load_image(source: Path | bytes) -> RgbImage:
    """Decode a file or encoded bytes to RGB."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return decode_image(data, LIMITS.max_bytes, LIMITS.max_pixels)


def find_face(detector: FaceDetector, source: Path | bytes) -> FaceFinding:
    """The face the service's 'largest' policy keeps in one image, through facepipe's face path."""
    path = FacePath(detector, LIMITS)
    try:
        image = load_image(source)
        found = path.detect(image, "all")
    except NoFaceError as exc:
        return FaceFinding("no_face", None, 0, str(exc))
    except (FacepipeError, OSError) as exc:
        return FaceFinding("unreadable", None, 0, str(exc))
    return FaceFinding("ok" if len(found) == 1 else "several_faces", found[0], len(found))


def _find_in_worker(source: Path | bytes) -> FaceFinding:
    if _worker_detector is None:
        raise RuntimeError("worker detector not initialised")
    return find_face(_worker_detector, source)


def find_faces(
    sources: Sequence[Path | bytes], spec: DetectorSpec, workers: int | None = None, desc: str = "detect"
) -> Iterator[tuple[int, FaceFinding]]:
    """(index, finding) for every source, in order, using ``workers`` processes (default: all cores)."""
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(sources) < 8:
        detector = create_detector(spec)
        for i, src in enumerate(tqdm(sources, desc=desc, disable=None)):
            yield i, find_face(detector, src)
        return
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(spec.model_dump_json(),)) as pool:
        results = pool.map(_find_in_worker, sources, chunksize=8)
        for i, finding in enumerate(tqdm(results, total=len(sources), desc=desc, disable=None)):
            yield i, finding
