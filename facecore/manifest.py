"""The model manifest: everything the service needs to use a model, and nothing it must guess (docs/models.md).

``models/<model_id>/manifest.json`` sits beside ``model.onnx``. Training writes it, calibration fills in
the decision numbers, the service reads it. Versioned by ``schema_version``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from facecore.constants import (
    MANIFEST_FILENAME,
    MODEL_FILENAME,
    ONNX_INPUT_NAME,
    ONNX_OUTPUT_NAME,
    SCHEMA_VERSION,
    TEMPLATES,
)
from facecore.decision_records import DecisionSet, DetectorRecord
from facecore.errors import ManifestError
from facecore.fileio import atomic_write_text, sha256_file

MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TemplateCrop(_Record):
    """5-point similarity warp of the detected landmarks onto a named template."""

    kind: Literal["template"] = "template"
    template: str = "arcface_112"

    @model_validator(mode="after")
    def _known_template(self) -> TemplateCrop:
        if self.template not in TEMPLATES:
            raise ValueError(f"unknown template {self.template!r}; known: {sorted(TEMPLATES)}")
        return self


class BoxMarginCrop(_Record):
    """Detector box grown by a margin (half per side), then resized to the input (FaceNet's crop).

    FaceNet's own preprocessing adds ``margin_px`` source pixels and clips to the photo. On tight face crops
    (CFP, ID photos) clipping removes the margin and stretches the face, so a model may instead ask for a
    margin relative to the box and black padding outside the photo, which keeps the face's scale fixed.
    """

    kind: Literal["box_margin"] = "box_margin"
    margin_px: float = Field(default=0.0, ge=0, description="total margin across each axis, in source pixels")
    margin_ratio: float = Field(default=0.0, ge=0, description="total margin across each axis, as a box fraction")
    clip: bool = Field(default=True, description="clip to the photo (true) or pad with black outside it (false)")


CropSpec = Annotated[TemplateCrop | BoxMarginCrop, Field(discriminator="kind")]


class PreprocessSpec(_Record):
    """How a face crop becomes the model's input tensor: x = (pixel - mean) / std, channels in color_order."""

    input_size: tuple[int, int] = Field(description="(height, width) of the model input")
    color_order: Literal["RGB", "BGR"]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    layout: Literal["NCHW"] = "NCHW"
    crop: CropSpec

    @model_validator(mode="after")
    def _positive(self) -> PreprocessSpec:
        if min(self.input_size) < 8:
            raise ValueError(f"input_size must be at least 8x8, got {self.input_size}")
        if min(self.std) <= 0:
            raise ValueError(f"std must be > 0, got {self.std}")
        return self


class OnnxSpec(_Record):
    """Tensor names and opset of model.onnx."""

    input_name: str = ONNX_INPUT_NAME
    output_name: str = ONNX_OUTPUT_NAME
    opset: int
    dynamic_batch: bool = True


class UncertaintyRecord(_Record):
    """What kappa = ||e|| means for this model, measured on the calibration set."""

    kappa_trained: bool = Field(description="False when the model was not trained to make its norm a certainty")
    enroll_kappa_min: float | None = Field(default=None, description="enrollment refuses faces below this kappa")
    enroll_rule: str | None = Field(default=None, description="how enroll_kappa_min was chosen, in words")
    kappa_buckets: list[float] = Field(default_factory=list, description="histogram buckets for monitoring kappa")
    kappa_percentiles: list[tuple[float, float]] = Field(
        default_factory=list, description="(percentile in [0, 100], kappa) pairs, ascending"
    )

    @model_validator(mode="after")
    def _ascending(self) -> UncertaintyRecord:
        pct = [p for p, _ in self.kappa_percentiles]
        val = [v for _, v in self.kappa_percentiles]
        if pct != sorted(pct) or val != sorted(val):
            raise ValueError("kappa_percentiles must ascend in both percentile and kappa")
        return self

    def quality_percentile(self, kappa: float) -> float | None:
        """Percentile of kappa among the calibration faces (None when no percentiles were recorded)."""
        if len(self.kappa_percentiles) < 2:
            return None
        pct, val = zip(*self.kappa_percentiles, strict=True)
        return float(np.interp(kappa, val, pct))


class ScoreStatsRecord(_Record):
    """Mean, unbiased std and count of one score sample."""

    mean: float
    std: float
    count: int


class DPrimeRecord(_Record):
    """d' with its bootstrap interval."""

    value: float
    low: float
    high: float
    confidence: float
    method: Literal["pairs", "identities"]


class OperatingPointRecord(_Record):
    """A named threshold with the error rates measured at it on the calibration pairs."""

    name: str
    target_far: float | None = Field(description="None for points not chosen by FAR (the EER point)")
    threshold: float
    far: float
    frr: float
    n_genuine: int
    n_impostor: int
    far_interval: tuple[float, float] | None = Field(default=None, description="identity-bootstrap FAR interval")


class PairSetRecord(_Record):
    """Which pairs a calibration or evaluation used."""

    name: str
    fingerprint: str
    n_genuine: int
    n_impostor: int
    mode: Literal["pairs", "all_impostors"] = "pairs"
    images_without_face: int = Field(default=0, description="left out: the service would answer no_face")
    pairs_without_face: int = 0


class CalibrationRecord(_Record):
    """Every number an accept/reject decision needs, measured on a named pair set."""

    score_kind: Literal["cosine"] = "cosine"
    pair_set: PairSetRecord
    genuine: ScoreStatsRecord
    impostor: ScoreStatsRecord
    d_prime: DPrimeRecord
    eer: float
    eer_threshold: float
    bayes_threshold: float | None
    operating_points: list[OperatingPointRecord]
    default_operating_point: str
    created: datetime
    decision_set: DecisionSet | None = Field(default=None, description="the three-way and identification rules")

    @model_validator(mode="after")
    def _default_exists(self) -> CalibrationRecord:
        names = [p.name for p in self.operating_points]
        if len(set(names)) != len(names):
            raise ValueError(f"operating point names must be unique, got {names}")
        if self.default_operating_point not in names:
            raise ValueError(f"default_operating_point {self.default_operating_point!r} is not one of {names}")
        return self

    def point(self, name: str | None = None) -> OperatingPointRecord:
        """The named operating point, or the default one."""
        wanted = name or self.default_operating_point
        for p in self.operating_points:
            if p.name == wanted:
                return p
        raise KeyError(f"no operating point {wanted!r}; have {[p.name for p in self.operating_points]}")


class EvaluationRecord(_Record):
    """A benchmark run on the exported model."""

    benchmark: str
    pair_set: PairSetRecord
    accuracy_mean: float | None = None
    accuracy_std: float | None = None
    n_folds: int | None = None
    eer: float
    d_prime: float
    roc_auc: float | None = None
    tar_at_far: dict[str, float] = Field(default_factory=dict)
    note: str | None = None


class Provenance(_Record):
    """Where the model came from."""

    source: Literal["dprime-train", "import"]
    training_config: dict[str, Any] | None = None
    git_commit: str | None = None
    data_fingerprint: str | None = None
    packages: dict[str, str] = Field(default_factory=dict)
    notes: str | None = None


class ModelManifest(_Record):
    """The contract between training and the service for one model."""

    schema_version: int = SCHEMA_VERSION
    model_id: str = Field(pattern=MODEL_ID_PATTERN)
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    backbone: str
    loss: str
    embedding_dim: int = Field(ge=3)
    onnx: OnnxSpec
    preprocess: PreprocessSpec
    detector: DetectorRecord | None = Field(default=None, description="the detector the calibration measured with")
    uncertainty: UncertaintyRecord
    calibration: CalibrationRecord | None = None
    evaluation: list[EvaluationRecord] = Field(default_factory=list)
    provenance: Provenance


def load_manifest(model_dir: Path, verify_checksum: bool = True) -> ModelManifest:
    """Read and validate ``model_dir/manifest.json``; by default also check model.onnx's sha256.

    Raises:
        ManifestError: missing file, bad JSON, another schema version, invalid fields, or checksum mismatch.
    """
    path = Path(model_dir) / MANIFEST_FILENAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ManifestError(f"no manifest at {path}") from exc
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ManifestError(f"{path} must hold a JSON object, got {type(raw).__name__}")
    version = raw.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ManifestError(f"{path} has schema_version {version!r}; this dprime reads schema_version {SCHEMA_VERSION}")
    try:
        manifest = ModelManifest.model_validate(raw)
    except ValidationError as exc:
        raise ManifestError(f"{path} is invalid: {exc}") from exc
    if verify_checksum:
        verify_model_checksum(Path(model_dir), manifest)
    return manifest


def save_manifest(manifest: ModelManifest, model_dir: Path) -> Path:
    """Write the manifest atomically into model_dir and return its path."""
    path = Path(model_dir) / MANIFEST_FILENAME
    atomic_write_text(path, manifest.model_dump_json(indent=2) + "\n")
    return path


def verify_model_checksum(model_dir: Path, manifest: ModelManifest) -> None:
    """Fail loudly unless model.onnx exists and hashes to the manifest's sha256."""
    model_path = Path(model_dir) / MODEL_FILENAME
    if not model_path.is_file():
        raise ManifestError(f"manifest {manifest.model_id!r} has no model file at {model_path}")
    actual = sha256_file(model_path)
    if actual != manifest.model_sha256:
        raise ManifestError(
            f"checksum mismatch for {model_path}: manifest says sha256 {manifest.model_sha256}, file has {actual}"
        )
