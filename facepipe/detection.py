"""Face detection results and the detector interface every ONNX detector implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from facepipe.decode import RgbImage

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Detection:
    """One face: box (x1, y1, x2, y2), detector score, and 5 landmarks (5, 2) in source pixels.

    Landmark order is the ArcFace template's: image-left eye, image-right eye, nose tip, image-left mouth
    corner, image-right mouth corner.
    """

    box: FloatArray
    score: float
    landmarks: FloatArray

    @property
    def area(self) -> float:
        """Box area in pixels."""
        return float(max(self.box[2] - self.box[0], 0.0) * max(self.box[3] - self.box[1], 0.0))


class FaceDetector(Protocol):
    """Anything that finds faces with 5 landmarks in an RGB image."""

    name: str

    def detect(self, image: RgbImage) -> list[Detection]:
        """Faces in the image, highest score first."""
        ...


def nms(boxes: FloatArray, scores: FloatArray, iou_threshold: float) -> npt.NDArray[np.int64]:
    """Indices kept by greedy non-maximum suppression, highest score first."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


@dataclass(frozen=True)
class DetectorInput:
    """An image shrunk to fit a detector and padded (bottom/right) to a multiple of its largest stride."""

    canvas: RgbImage
    content_hw: tuple[int, int]
    scale_xy: tuple[float, float]


def detector_input(image: RgbImage, max_side: int, align: int) -> DetectorInput:
    """Downscale so the longer side is at most max_side, then pad to multiples of ``align``.

    ``scale_xy`` maps detector pixels back to source pixels (the padding shares the content's origin).
    """
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = image if scale == 1.0 else cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    ph, pw = -(-sh // align) * align, -(-sw // align) * align
    canvas = np.zeros((ph, pw, 3), dtype=np.uint8)
    canvas[:sh, :sw] = resized
    return DetectorInput(canvas=canvas, content_hw=(sh, sw), scale_xy=(w / sw, h / sh))
