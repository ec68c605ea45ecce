"""The face path as routes use it: facepipe's one path, timed into Prometheus, embedding through a model's engine."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt

from facecore.errors import DprimeError
from facepipe.crops import FaceChip
from facepipe.detection import FaceDetector
from facepipe.facepath import EmbeddedFace, FacePath, FacePolicy, ImageLimits
from service.config import Settings
from service.metrics import Metrics
from service.runtime import ModelRuntime

__all__ = ["EmbeddedFace", "FacePipeline", "FacePolicy"]


class FacePipeline:
    """facepipe.FacePath with the service's limits, its metrics, and each model's micro-batching engine."""

    def __init__(self, detector: FaceDetector, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.path = FacePath(detector, ImageLimits(settings.max_image_bytes, settings.max_image_pixels), self.stage)

    @property
    def detector(self) -> FaceDetector:
        """The detector faces are found with."""
        return self.path.detector

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one stage into dprime_stage_latency_seconds."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.metrics.stage_latency.labels(stage=name).observe(time.perf_counter() - start)

    def _observe(self, kappas: Sequence[float]) -> None:
        for k in kappas:
            self.metrics.kappa.observe(float(k))

    def embed_images(
        self, datas: Sequence[bytes], runtime: ModelRuntime, policy: FacePolicy, keep_chip: bool = False
    ) -> list[list[EmbeddedFace] | DprimeError]:
        """Embed the faces of several images in one model batch; an image that fails yields its error instead."""
        out = self.path.embed_images(datas, runtime.manifest.preprocess, runtime.engine.embed, policy, keep_chip)
        self._observe([f.kappa for r in out if not isinstance(r, DprimeError) for f in r])
        return out

    def embed_image(
        self, data: bytes, runtime: ModelRuntime, policy: FacePolicy, keep_chip: bool = False
    ) -> list[EmbeddedFace]:
        """Every face the policy keeps from one uploaded image, embedded (errors raised)."""
        faces = self.path.embed_image(data, runtime.manifest.preprocess, runtime.engine.embed, policy, keep_chip)
        self._observe([f.kappa for f in faces])
        return faces

    def embed_aligned(self, data: bytes, runtime: ModelRuntime) -> EmbeddedFace:
        """A client's pre-aligned crop (no detection), embedded."""
        face = self.path.embed_aligned(data, runtime.manifest.preprocess, runtime.engine.embed)
        self._observe([face.kappa])
        return face

    def embed_chips(
        self, chips: Sequence[FaceChip], runtime: ModelRuntime
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Re-embed stored chips with a (new) model, cropping each as that model's manifest asks."""
        return self.path.embed_chips(chips, runtime.manifest.preprocess, runtime.engine.embed)
