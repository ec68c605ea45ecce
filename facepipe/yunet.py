"""OpenCV's YuNet face detector (an ONNX file given by path), run through ``cv2.FaceDetectorYN``."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from facepipe.decode import RgbImage
from facepipe.detection import Detection, detector_input
from facepipe.errors import ModelLoadError

_ALIGN = 32


class YuNetDetector:
    """YuNet with 5 landmarks (its landmark order already matches the ArcFace template's)."""

    name = "yunet"

    def __init__(self, model_path: Path, score_threshold: float, nms_threshold: float, max_side: int) -> None:
        if not Path(model_path).is_file():
            raise ModelLoadError(f"no YuNet model at {model_path}")
        try:
            self._det = cv2.FaceDetectorYN.create(str(model_path), "", (320, 320), score_threshold, nms_threshold, 5000)
        except cv2.error as exc:
            raise ModelLoadError(f"could not load YuNet from {model_path}: {exc}") from exc
        self.max_side = max_side
        # cv2's detector keeps its input size as state, so concurrent callers take turns.
        self._lock = threading.Lock()

    def detect(self, image: RgbImage) -> list[Detection]:
        """Faces above the score threshold, highest score first."""
        prepared = detector_input(image, self.max_side, _ALIGN)
        ph, pw = prepared.canvas.shape[:2]
        canvas = np.ascontiguousarray(prepared.canvas[:, :, ::-1])  # cv2 wants BGR
        with self._lock:
            self._det.setInputSize((pw, ph))
            _, faces = self._det.detect(canvas)
        if faces is None:
            return []
        sx, sy = prepared.scale_xy
        out = []
        for row in faces[np.argsort(-faces[:, 14])]:
            x, y, bw, bh = row[:4]
            box = np.array([x * sx, y * sy, (x + bw) * sx, (y + bh) * sy], dtype=np.float64)
            pts = row[4:14].reshape(5, 2).astype(np.float64) * [sx, sy]
            out.append(Detection(box=box, score=float(row[14]), landmarks=pts))
        return out
