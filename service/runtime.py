"""A loaded model: its manifest (checksum verified), onnxruntime session and micro-batching engine."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from facecore.manifest import ModelManifest, OperatingPointRecord
from facecore.registry import ModelRegistry
from facepipe.embedder import OnnxEmbedder
from service.config import Settings
from service.engine import InferenceEngine
from service.error_catalogue import ServiceError
from service.metrics import Metrics

logger = logging.getLogger(__name__)


def resolve_providers(settings: Settings) -> list[str]:
    """Short provider names to request: 'auto' means CUDA when onnxruntime offers it, then CPU."""
    if settings.providers != "auto":
        return settings.provider_list
    return ["cuda", "cpu"] if "CUDAExecutionProvider" in ort.get_available_providers() else ["cpu"]


@dataclass
class ModelRuntime:
    """Everything needed to embed faces with one model."""

    manifest: ModelManifest
    model_dir: Path
    embedder: OnnxEmbedder
    engine: InferenceEngine

    @property
    def model_id(self) -> str:
        """The model's id."""
        return self.manifest.model_id

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return self.manifest.embedding_dim

    @classmethod
    def load(cls, registry: ModelRegistry, model_id: str, settings: Settings, metrics: Metrics) -> ModelRuntime:
        """Load and check a model (manifest, sha256, tensor names and shapes, providers) and start its engine."""
        manifest = registry.load(model_id, verify_checksum=True)
        model_dir = registry.model_dir(model_id)
        embedder = OnnxEmbedder(
            model_dir,
            manifest,
            providers=resolve_providers(settings),
            require_cuda=settings.cuda_required,
            intra_op_threads=settings.intra_op_threads,
        )
        engine = InferenceEngine(
            embedder.embed,
            settings.batch_size,
            settings.batch_wait_ms,
            settings.queue_size,
            name=f"engine-{model_id}",
            observer=metrics.observe_batch,
        )
        logger.info(
            "loaded model %s (%s/%s, d=%d) on %s",
            model_id,
            manifest.backbone,
            manifest.loss,
            manifest.embedding_dim,
            embedder.providers_in_use,
        )
        return cls(manifest=manifest, model_dir=model_dir, embedder=embedder, engine=engine)

    def warmup(self) -> None:
        """Run one batch so the first request does not pay for session initialisation."""
        h, w = self.manifest.preprocess.input_size
        self.embedder.embed(np.zeros((1, 3, h, w), dtype=np.float32))

    def operating_point(self, name: str | None) -> OperatingPointRecord:
        """A calibrated operating point by name (None: the settings' choice or the manifest default)."""
        calibration = self.manifest.calibration
        if calibration is None:
            raise ServiceError(
                "model_not_calibrated",
                f"model {self.model_id!r} has no calibration, so it cannot decide match or non-match; "
                f"run `dprime calibrate models/{self.model_id} --pairs ...`",
            )
        try:
            return calibration.point(name)
        except KeyError as exc:
            names = [p.name for p in calibration.operating_points]
            raise ServiceError(
                "bad_request", f"unknown operating point {name!r}; this model has {names}", {"available": names}
            ) from exc

    def close(self) -> None:
        """Stop the engine."""
        self.engine.close()
