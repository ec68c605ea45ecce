"""Builders of small artefacts for tests: manifests and model directories (no data, no downloads)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from facecore.constants import MODEL_FILENAME
from facecore.decision_records import (
    BandRecord,
    DecisionRecord,
    DecisionSet,
    IdentificationPoint,
    IdentificationRecord,
    ScoreHistogramRecord,
)
from facecore.manifest import (
    CalibrationRecord,
    DPrimeRecord,
    ModelManifest,
    OnnxSpec,
    OperatingPointRecord,
    PairSetRecord,
    PreprocessSpec,
    Provenance,
    ScoreStatsRecord,
    TemplateCrop,
    UncertaintyRecord,
    save_manifest,
)


def make_band(
    name: str, accept: float, reject: float, low: float | None = None, high: float | None = None
) -> BandRecord:
    """A resolved band with plausible calibration counts."""
    return BandRecord(
        name=name,
        quality_low=low,
        quality_high=high,
        resolved=True,
        accept_threshold=accept,
        reject_threshold=reject,
        target_far=1e-3,
        far=9e-4,
        far_interval=(6e-4, 1e-3),
        frr=0.02,
        miss_bound=0.02,
        miss_rate=0.019,
        miss_interval=(0.012, 0.02),
        n_genuine=1000,
        n_impostor=100000,
        n_identities=100,
        llr_slope=10.0,
        llr_intercept=-10.0 * (accept + reject) / 2,
    )


def make_rule(name: str, accept: float, reject: float, target_far: float = 1e-3) -> DecisionRecord:
    """A rule whose overall band and both kappa bands (split at kappa 20) share the thresholds."""
    band = make_band("all", accept, reject)
    return DecisionRecord(
        name=name,
        target_far=target_far,
        miss_bound=0.02,
        confidence=0.95,
        min_pairs_factor=10.0,
        min_identities=20,
        n_boot=100,
        overall=band,
        bands=[make_band("q1", accept, reject, None, 20.0), make_band("q2", accept, reject, 20.0, None)],
        cllr=0.1,
        cllr_overall=0.12,
    )


def make_decision_set(threshold: float, reject: float) -> DecisionSet:
    """Rules far_1e-3 (the given thresholds) and far_1e-2 (0.25 / 0.1), identification at FPIR 1 %."""
    return DecisionSet(
        id="manifest",
        source="manifest",
        name="synthetic",
        created=datetime(2026, 1, 1, tzinfo=UTC),
        decisions=[make_rule("far_1e-3", threshold, reject), make_rule("far_1e-2", 0.25, 0.1, 1e-2)],
        default_decision="far_1e-3",
        identification=IdentificationRecord(
            target_fpir=0.01,
            n_probes=2000,
            max_gallery_size=100,
            points=[
                IdentificationPoint(gallery_size=n, threshold=threshold, fpir=0.009, rank1_hit_rate=0.9)
                for n in (1, 10, 100)
            ],
        ),
        histogram=ScoreHistogramRecord(edges=[-0.5, 0.0, 0.5, 1.0], genuine=[0.0, 0.2, 1.8], impostor=[0.4, 1.5, 0.1]),
    )


def make_calibration(threshold: float = 0.3, reject: float | None = None) -> CalibrationRecord:
    """A calibration record with a FAR 1e-3 default point, an EER point and the three-way rules."""
    pair_set = PairSetRecord(name="synthetic", fingerprint="0" * 16, n_genuine=1000, n_impostor=10000)
    return CalibrationRecord(
        pair_set=pair_set,
        genuine=ScoreStatsRecord(mean=0.7, std=0.1, count=1000),
        impostor=ScoreStatsRecord(mean=0.05, std=0.1, count=10000),
        d_prime=DPrimeRecord(value=6.5, low=6.2, high=6.8, confidence=0.95, method="pairs"),
        eer=0.01,
        eer_threshold=0.25,
        bayes_threshold=0.375,
        operating_points=[
            OperatingPointRecord(
                name="far_1e-3",
                target_far=1e-3,
                threshold=threshold,
                far=9e-4,
                frr=0.02,
                n_genuine=1000,
                n_impostor=10000,
            ),
            OperatingPointRecord(
                name="eer", target_far=None, threshold=0.25, far=0.01, frr=0.01, n_genuine=1000, n_impostor=10000
            ),
        ],
        default_operating_point="far_1e-3",
        created=datetime(2026, 1, 1, tzinfo=UTC),
        decision_set=make_decision_set(threshold, threshold - 0.2 if reject is None else reject),
    )


def make_manifest(
    model_id: str,
    onnx_bytes: bytes,
    dim: int = 8,
    input_size: int = 32,
    calibrated: bool = False,
    enroll_kappa_min: float | None = None,
    threshold: float = 0.3,
    reject: float | None = None,
) -> ModelManifest:
    """A manifest for onnx_bytes with a template crop and RGB (x - 127.5)/128 normalisation."""
    return ModelManifest(
        model_id=model_id,
        created=datetime(2026, 1, 1, tzinfo=UTC),
        model_sha256=hashlib.sha256(onnx_bytes).hexdigest(),
        backbone="tiny",
        loss="pd_vmf",
        embedding_dim=dim,
        onnx=OnnxSpec(opset=17),
        preprocess=PreprocessSpec(
            input_size=(input_size, input_size),
            color_order="RGB",
            mean=(127.5, 127.5, 127.5),
            std=(128.0, 128.0, 128.0),
            crop=TemplateCrop(template="arcface_112"),
        ),
        uncertainty=UncertaintyRecord(
            kappa_trained=True,
            enroll_kappa_min=enroll_kappa_min,
            enroll_rule=None if enroll_kappa_min is None else "test rule: refuse below this kappa",
            kappa_buckets=[5.0, 10.0, 20.0, 40.0],
            kappa_percentiles=[(0.0, 5.0), (50.0, 20.0), (100.0, 40.0)],
        ),
        calibration=make_calibration(threshold, reject) if calibrated else None,
        provenance=Provenance(source="dprime-train", git_commit="deadbeef"),
    )


def write_model_dir(model_dir: Path, onnx_bytes: bytes, model_id: str, **kwargs: object) -> Path:
    """Write model.onnx and a matching manifest.json into model_dir."""
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / MODEL_FILENAME).write_bytes(onnx_bytes)
    save_manifest(make_manifest(model_id, onnx_bytes, **kwargs), model_dir)  # type: ignore[arg-type]
    return model_dir


def tiny_onnx_model(dim: int = 8, size: int = 32, seed: int = 0, scale: float = 20.0) -> bytes:
    """A real ONNX embedder built with onnx.helper: 4x4 average pooling, then a fixed random linear map.

    Input ``images`` (N, 3, size, size) float32, output ``embedding`` (N, dim): deterministic, so the same
    face gives the same vector and different crops give different ones.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    pooled = 3 * (size // 4) ** 2
    weight = (rng.normal(size=(pooled, dim)) * scale / np.sqrt(pooled)).astype(np.float32)
    bias = (rng.normal(size=(dim,)) * scale * 0.1).astype(np.float32)
    nodes = [
        helper.make_node("AveragePool", ["images"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "weight"], ["projected"]),
        helper.make_node("Add", ["projected", "bias"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_embedder",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", dim])],
        initializer=[numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(bias, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_tiny_model(models_dir: Path, model_id: str, dim: int = 8, seed: int = 0, **kwargs: object) -> Path:
    """A tiny real ONNX model with its manifest under models_dir/model_id."""
    return write_model_dir(models_dir / model_id, tiny_onnx_model(dim=dim, seed=seed), model_id, dim=dim, **kwargs)
