"""Builders of small artefacts for tests: manifests and model directories (no data, no downloads)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from facecore.constants import MODEL_FILENAME
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


def make_calibration(threshold: float = 0.3, kappa_budget: float = 0.05) -> CalibrationRecord:
    """A calibration record with a FAR 1e-3 default point and an EER point."""
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
    )


def make_manifest(
    model_id: str,
    onnx_bytes: bytes,
    dim: int = 8,
    input_size: int = 32,
    calibrated: bool = False,
    kappa_min: float | None = None,
    threshold: float = 0.3,
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
            kappa_min=kappa_min,
            error_budget=0.05 if kappa_min is not None else None,
            kappa_percentiles=[(0.0, 5.0), (50.0, 20.0), (100.0, 40.0)],
        ),
        calibration=make_calibration(threshold) if calibrated else None,
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
