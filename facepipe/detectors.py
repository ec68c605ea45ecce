"""Choose a face detector by name or ONNX path (the one place that knows every implementation)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from facepipe.detection import FaceDetector
from facepipe.errors import ModelLoadError


class DetectorSpec(BaseModel):
    """Which detector to run and its thresholds (service settings and `dprime align` both build one)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(default="retinaface", description="'retinaface' or 'yunet'")
    path: Path | None = Field(default=None, description="ONNX file; None means the packaged RetinaFace")
    score_threshold: float = Field(default=0.8, gt=0, lt=1)
    nms_threshold: float = Field(default=0.4, gt=0, lt=1)
    max_side: int = Field(default=640, ge=64)


def spec_from_string(value: str, **kwargs: float | int) -> DetectorSpec:
    """'retinaface', 'yunet:/path/model.onnx', or a bare path (whose file name says which detector it is)."""
    if value == "retinaface":
        return DetectorSpec(kind="retinaface", **kwargs)
    kind, sep, path = value.partition(":")
    if sep and kind in ("retinaface", "yunet"):
        return DetectorSpec(kind=kind, path=Path(path), **kwargs)
    name = Path(value).name.lower()
    for known in ("retinaface", "yunet"):
        if known in name:
            return DetectorSpec(kind=known, path=Path(value), **kwargs)
    raise ModelLoadError(
        f"cannot tell which detector {value!r} is; use 'retinaface', 'retinaface:PATH' or 'yunet:PATH'"
    )


def create_detector(spec: DetectorSpec, providers: list[str] | None = None, intra_op_threads: int = 0) -> FaceDetector:
    """Build the detector a spec names."""
    if spec.kind == "retinaface":
        from facepipe.retinaface import RetinaFaceDetector

        return RetinaFaceDetector(
            model=spec.path,
            score_threshold=spec.score_threshold,
            nms_threshold=spec.nms_threshold,
            max_side=spec.max_side,
            providers=providers,
            intra_op_threads=intra_op_threads,
        )
    if spec.kind == "yunet":
        from facepipe.yunet import YuNetDetector

        if spec.path is None:
            raise ModelLoadError("the yunet detector needs a model path (yunet:/path/face_detection_yunet.onnx)")
        return YuNetDetector(spec.path, spec.score_threshold, spec.nms_threshold, spec.max_side)
    raise ModelLoadError(f"unknown detector kind {spec.kind!r}; known: retinaface, yunet")
