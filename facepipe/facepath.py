"""The one face path: image bytes -> decoded photo -> detected faces -> the face(s) a policy keeps -> crops as the
manifest declares -> model input -> raw embeddings from an injected batch function -> (mu, kappa).

The service runs it with its micro-batching engine; calibration, evaluation, alignment and the benchmarks run it
with onnxruntime or torch. Because every caller goes through these functions, the numbers a calibration states are
measured on exactly the faces the service decides on: an image in which the service would find no face is left out
of a calibration and counted, never replaced by a guessed crop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from facecore.errors import DprimeError
from facecore.manifest import PreprocessSpec
from facecore.vmf import embedding_to_vmf
from facepipe.crops import FaceChip, crop_face, make_chip, resize_aligned
from facepipe.decode import RgbImage, decode_image
from facepipe.detection import Detection, FaceDetector
from facepipe.errors import MultipleFacesError, NoFaceError
from facepipe.tensors import to_input_tensor

FacePolicy = Literal["largest", "error", "all"]
FloatArray = npt.NDArray[np.float64]
# (N, 3, H, W) float32 model input -> (N, D) raw embeddings; onnxruntime, the service's engine or torch.
EmbedFn = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]
# A context manager per named stage, so the service can time stages without this module knowing metrics.
StageTimer = Callable[[str], AbstractContextManager[None]]


@dataclass(frozen=True)
class ImageLimits:
    """The largest upload the path decodes, in bytes and in pixels (read from the header before decoding)."""

    max_bytes: int
    max_pixels: int


@dataclass(frozen=True)
class EmbeddedFace:
    """One embedded face: direction mu (D,), certainty kappa, where it was found, and its chip if kept."""

    mu: FloatArray
    kappa: float
    detection: Detection | None
    chip: FaceChip | None = None


def choose_faces(found: Sequence[Detection], policy: FacePolicy, width: int, height: int) -> list[Detection]:
    """The faces a policy keeps, largest first: 'largest' one, 'error' unless exactly one, or 'all'."""
    if not found:
        raise NoFaceError(f"no face found in the {width}x{height} image", {"width": width, "height": height})
    ordered = sorted(found, key=lambda d: d.area, reverse=True)
    if policy == "error" and len(ordered) > 1:
        raise MultipleFacesError(
            f"found {len(ordered)} faces where exactly one was expected; send a photo of one person "
            "or ask for multiple_faces=largest",
            {"faces": len(ordered), "boxes": [d.box.round(1).tolist() for d in ordered]},
        )
    return ordered if policy == "all" else ordered[:1]


def _untimed(_: str) -> AbstractContextManager[None]:
    return nullcontext()


class FacePath:
    """Decode, detect, choose, crop and embed with one detector and one set of image limits."""

    def __init__(self, detector: FaceDetector, limits: ImageLimits, stage: StageTimer = _untimed) -> None:
        self.detector = detector
        self.limits = limits
        self.stage = stage

    def decode(self, data: bytes) -> RgbImage:
        """Bytes to RGB within the byte and pixel limits."""
        with self.stage("decode"):
            return decode_image(data, self.limits.max_bytes, self.limits.max_pixels)

    def detect(self, image: RgbImage, policy: FacePolicy) -> list[Detection]:
        """The faces of an image that the policy keeps."""
        with self.stage("detect"):
            found = self.detector.detect(image)
        return choose_faces(found, policy, image.shape[1], image.shape[0])

    def embed_raw(self, crops: Sequence[RgbImage], spec: PreprocessSpec, embed: EmbedFn) -> npt.NDArray[np.float32]:
        """Raw embeddings e (N, D) of ready crops."""
        tensor = to_input_tensor(crops, spec)
        with self.stage("embed"):
            return embed(tensor)

    def embed_crops(
        self, crops: Sequence[RgbImage], spec: PreprocessSpec, embed: EmbedFn
    ) -> tuple[FloatArray, FloatArray]:
        """mu (N, D) and kappa (N,) of ready crops."""
        return embedding_to_vmf(self.embed_raw(crops, spec, embed))

    def embed_images(
        self,
        datas: Sequence[bytes],
        spec: PreprocessSpec,
        embed: EmbedFn,
        policy: FacePolicy,
        keep_chip: bool = False,
    ) -> list[list[EmbeddedFace] | DprimeError]:
        """The kept faces of several images in one model batch; an image that fails yields its error instead."""
        prepared: list[tuple[list[Detection], list[RgbImage], list[FaceChip | None]] | DprimeError] = []
        for data in datas:
            try:
                image = self.decode(data)
                detections = self.detect(image, policy)
                with self.stage("align"):
                    crops = [crop_face(image, d, spec) for d in detections]
                    chips: list[FaceChip | None] = [make_chip(image, d) if keep_chip else None for d in detections]
                prepared.append((detections, crops, chips))
            except DprimeError as exc:
                prepared.append(exc)
        all_crops = [c for p in prepared if not isinstance(p, DprimeError) for c in p[1]]
        if not all_crops:
            return [p for p in prepared if isinstance(p, DprimeError)]
        mu, kappa = self.embed_crops(all_crops, spec, embed)
        return list(_assemble(prepared, mu, kappa))

    def embed_image(
        self, data: bytes, spec: PreprocessSpec, embed: EmbedFn, policy: FacePolicy, keep_chip: bool = False
    ) -> list[EmbeddedFace]:
        """Every face the policy keeps from one image, embedded (errors raised)."""
        (result,) = self.embed_images([data], spec, embed, policy, keep_chip)
        if isinstance(result, DprimeError):
            raise result
        return result

    def embed_aligned(self, data: bytes, spec: PreprocessSpec, embed: EmbedFn) -> EmbeddedFace:
        """A client's pre-aligned crop (no detection), embedded."""
        image = self.decode(data)
        with self.stage("align"):
            crop = resize_aligned(image, spec)
        mu, kappa = self.embed_crops([crop], spec, embed)
        return EmbeddedFace(mu=mu[0], kappa=float(kappa[0]), detection=None)

    def embed_chips(
        self, chips: Sequence[FaceChip], spec: PreprocessSpec, embed: EmbedFn
    ) -> tuple[FloatArray, FloatArray]:
        """Re-embed stored chips with a (new) model, cropping each as that model's manifest asks."""
        crops = [crop_face(c.image, c.detection, spec, source_scale=c.scale) for c in chips]
        return self.embed_crops(crops, spec, embed)

    def embed_detected(
        self, images: Sequence[RgbImage], detections: Sequence[Detection], spec: PreprocessSpec, embed: EmbedFn
    ) -> npt.NDArray[np.float32]:
        """Raw embeddings of faces whose detections ``detect`` computed earlier (cached over a data set)."""
        with self.stage("align"):
            crops = [crop_face(img, det, spec) for img, det in zip(images, detections, strict=True)]
        return self.embed_raw(crops, spec, embed)


def _assemble(
    prepared: Sequence[tuple[list[Detection], list[RgbImage], list[FaceChip | None]] | DprimeError],
    mu: FloatArray,
    kappa: FloatArray,
) -> Iterator[list[EmbeddedFace] | DprimeError]:
    i = 0
    for p in prepared:
        if isinstance(p, DprimeError):
            yield p
            continue
        detections, _, chips = p
        faces = []
        for det, chip in zip(detections, chips, strict=True):
            faces.append(EmbeddedFace(mu=mu[i], kappa=float(kappa[i]), detection=det, chip=chip))
            i += 1
        yield faces
