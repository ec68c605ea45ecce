"""The face pipeline as routes use it: bytes -> faces -> crops -> batched embeddings (mu, kappa).

The only place routes call for face work; every stage is timed into the Prometheus metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from facecore.errors import DprimeError
from facecore.vmf import embedding_to_vmf
from facepipe.crops import FaceChip, crop_face, make_chip, resize_aligned
from facepipe.decode import RgbImage, decode_image
from facepipe.detection import Detection, FaceDetector
from facepipe.errors import MultipleFacesError, NoFaceError
from facepipe.tensors import to_input_tensor
from service.config import Settings
from service.metrics import Metrics
from service.runtime import ModelRuntime

logger = logging.getLogger(__name__)

FacePolicy = Literal["largest", "error", "all"]


@dataclass(frozen=True)
class EmbeddedFace:
    """One embedded face: direction mu (D,), certainty kappa, where it was found, and its chip if kept."""

    mu: npt.NDArray[np.float64]
    kappa: float
    detection: Detection | None
    chip: FaceChip | None = None


class FacePipeline:
    """Decode, detect, crop and embed, with the limits and policies from settings."""

    def __init__(self, detector: FaceDetector, settings: Settings, metrics: Metrics) -> None:
        self.detector = detector
        self.settings = settings
        self.metrics = metrics

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one stage into dprime_stage_latency_seconds."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.metrics.stage_latency.labels(stage=name).observe(time.perf_counter() - start)

    def decode(self, data: bytes) -> RgbImage:
        """Bytes to RGB within the configured byte and pixel limits."""
        with self.stage("decode"):
            return decode_image(data, self.settings.max_image_bytes, self.settings.max_image_pixels)

    def detect(self, image: RgbImage, policy: FacePolicy) -> list[Detection]:
        """Faces to use from an image under the several-faces policy (largest first)."""
        with self.stage("detect"):
            found = self.detector.detect(image)
        if not found:
            raise NoFaceError(
                f"no face found in the {image.shape[1]}x{image.shape[0]} image",
                {"width": image.shape[1], "height": image.shape[0]},
            )
        found = sorted(found, key=lambda d: d.area, reverse=True)
        if policy == "error" and len(found) > 1:
            raise MultipleFacesError(
                f"found {len(found)} faces where exactly one was expected; send a photo of one person "
                "or ask for multiple_faces=largest",
                {"faces": len(found), "boxes": [d.box.round(1).tolist() for d in found]},
            )
        return found if policy == "all" else found[:1]

    def embed_images(
        self, datas: Sequence[bytes], runtime: ModelRuntime, policy: FacePolicy, keep_chip: bool = False
    ) -> list[list[EmbeddedFace] | DprimeError]:
        """Embed the faces of several images in one model batch; an image that fails yields its error instead."""
        prepared: list[tuple[list[Detection], list[RgbImage], list[FaceChip | None]] | DprimeError] = []
        for data in datas:
            try:
                image = self.decode(data)
                detections = self.detect(image, policy)
                with self.stage("align"):
                    crops = [crop_face(image, d, runtime.manifest.preprocess) for d in detections]
                    chips: list[FaceChip | None] = [make_chip(image, d) if keep_chip else None for d in detections]
                prepared.append((detections, crops, chips))
            except DprimeError as exc:
                prepared.append(exc)
        all_crops = [c for p in prepared if not isinstance(p, DprimeError) for c in p[1]]
        if not all_crops:
            return [p for p in prepared if isinstance(p, DprimeError)]
        mu, kappa = self._embed(all_crops, runtime)
        out: list[list[EmbeddedFace] | DprimeError] = []
        i = 0
        for p in prepared:
            if isinstance(p, DprimeError):
                out.append(p)
                continue
            detections, _, chips = p
            faces = []
            for det, chip in zip(detections, chips, strict=True):
                faces.append(EmbeddedFace(mu=mu[i], kappa=float(kappa[i]), detection=det, chip=chip))
                i += 1
            out.append(faces)
        return out

    def embed_image(
        self, data: bytes, runtime: ModelRuntime, policy: FacePolicy, keep_chip: bool = False
    ) -> list[EmbeddedFace]:
        """Every face the policy keeps from one uploaded image, embedded (errors raised)."""
        (result,) = self.embed_images([data], runtime, policy, keep_chip)
        if isinstance(result, DprimeError):
            raise result
        return result

    def embed_aligned(self, data: bytes, runtime: ModelRuntime) -> EmbeddedFace:
        """A client's pre-aligned crop (no detection), embedded."""
        image = self.decode(data)
        with self.stage("align"):
            crop = resize_aligned(image, runtime.manifest.preprocess)
        mu, kappa = self._embed([crop], runtime)
        return EmbeddedFace(mu=mu[0], kappa=float(kappa[0]), detection=None)

    def embed_chips(
        self, chips: Sequence[FaceChip], runtime: ModelRuntime
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Re-embed stored chips with a (new) model, cropping each as that model's manifest asks."""
        spec = runtime.manifest.preprocess
        crops = [crop_face(c.image, c.detection, spec, source_scale=c.scale) for c in chips]
        return self._embed(crops, runtime)

    def _embed(
        self, crops: Sequence[RgbImage], runtime: ModelRuntime
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        tensor = to_input_tensor(crops, runtime.manifest.preprocess)
        with self.stage("embed"):
            raw = runtime.engine.embed(tensor)
        mu, kappa = embedding_to_vmf(raw)
        for k in kappa:
            self.metrics.kappa.observe(float(k))
        return mu, kappa
