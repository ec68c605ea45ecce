"""Choose a face detector by name or ONNX path (the one place that knows every implementation)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from facecore.decision_records import DetectorRecord
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


def detector_bytes(spec: DetectorSpec) -> bytes:
    """The ONNX bytes a spec runs (the packaged RetinaFace when it names no file)."""
    if spec.path is not None:
        return Path(spec.path).read_bytes()
    if spec.kind == "retinaface":
        from facepipe.retinaface import packaged_retinaface_bytes

        return packaged_retinaface_bytes()
    raise ModelLoadError(f"the {spec.kind} detector needs a model path")


def detector_record(spec: DetectorSpec) -> DetectorRecord:
    """What a manifest records of the detector a calibration ran with."""
    return DetectorRecord(
        kind=spec.kind,
        onnx_sha256=hashlib.sha256(detector_bytes(spec)).hexdigest(),
        max_side=spec.max_side,
        score_threshold=spec.score_threshold,
        nms_threshold=spec.nms_threshold,
    )


def spec_for_record(record: DetectorRecord, path: Path | None = None) -> DetectorSpec:
    """The spec that runs a recorded detector; refuses a file whose bytes are not the recorded ones."""
    spec = DetectorSpec(
        kind=record.kind,
        path=path,
        score_threshold=record.score_threshold,
        nms_threshold=record.nms_threshold,
        max_side=record.max_side,
    )
    actual = hashlib.sha256(detector_bytes(spec)).hexdigest()
    if actual != record.onnx_sha256:
        raise ModelLoadError(
            f"the {record.kind} detector at {path or 'the packaged default'} has sha256 {actual}; the model was "
            f"calibrated with {record.onnx_sha256}: install that detector or set DPRIME_DETECTOR to override"
        )
    return spec
