"""Per-image degradations that take identity evidence out of a face crop: what a distant or cheap camera does.

Training shows the model each face clean and degraded (fewer pixels across the face, blur, JPEG blocking, sensor
noise, something in front of the face), so the vMF term learns a lower kappa where the image carries less
evidence. The same functions build the step-by-step ladders the property tests degrade photos along.

Each degradation is a plain record drawn from a seeded generator, so an image's degraded copies are the same in
every run and on every worker.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

RgbImage = npt.NDArray[np.uint8]


class DegradeConfig(BaseModel):
    """How training degrades its images (``data.degrade`` in a training config); ranges are inclusive."""

    model_config = ConfigDict(extra="forbid")

    copies: int = Field(default=0, ge=0, description="degraded copies of every image, besides the clean one")
    face_width: tuple[float, float] = Field(default=(16.0, 112.0), description="face width after downscaling, px")
    blur_sigma: tuple[float, float] = Field(default=(0.5, 3.0), description="Gaussian blur sigma, crop pixels")
    jpeg_quality: tuple[int, int] = Field(default=(10, 90))
    noise_std: tuple[float, float] = Field(default=(2.0, 20.0), description="Gaussian noise, grey levels")
    occlusion: tuple[float, float] = Field(default=(0.1, 0.4), description="share of the crop a block covers")
    probability: float = Field(default=0.5, ge=0, le=1, description="chance each kind is applied to a copy")
    face_width_share: float | None = Field(
        default=None, gt=0, le=1, description="face width / crop width; None: from a box crop's margin"
    )
    seed: int = 0


@dataclass(frozen=True)
class Degradation:
    """One image's degradation; None or 0 leaves that kind out. Applied in camera order: occlusion (in the
    scene), too few pixels, blur, sensor noise, then compression."""

    face_width: float | None = None
    blur_sigma: float = 0.0
    noise_std: float = 0.0
    jpeg_quality: int | None = None
    occlusion: tuple[float, float, float, float] | None = None  # x, y, w, h as shares of the crop
    noise_seed: int = 0

    @property
    def is_clean(self) -> bool:
        """Whether this leaves the image as it is."""
        return (
            self.face_width is None
            and self.blur_sigma == 0.0
            and self.noise_std == 0.0
            and self.jpeg_quality is None
            and self.occlusion is None
        )


def sample_degradation(rng: np.random.Generator, config: DegradeConfig) -> Degradation:
    """A random degradation: each kind independently with ``config.probability``, never none at all.

    >>> d = sample_degradation(np.random.default_rng(0), DegradeConfig(copies=1))
    >>> d.is_clean
    False
    """
    while True:
        use = rng.random(5) < config.probability
        if use.any():
            break
    lo, hi = config.face_width
    # Log-uniform: halving the width costs as much evidence at 100 px as at 30 px.
    width = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if use[0] else None
    occlusion = None
    if use[4]:
        share = rng.uniform(*config.occlusion)
        aspect = rng.uniform(0.5, 2.0)
        w = float(min(1.0, np.sqrt(share * aspect)))
        h = float(min(1.0, share / w))
        occlusion = (float(rng.uniform(0, 1 - w)), float(rng.uniform(0, 1 - h)), w, h)
    return Degradation(
        face_width=width,
        blur_sigma=float(rng.uniform(*config.blur_sigma)) if use[1] else 0.0,
        noise_std=float(rng.uniform(*config.noise_std)) if use[2] else 0.0,
        jpeg_quality=int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1)) if use[3] else None,
        occlusion=occlusion,
        noise_seed=int(rng.integers(0, 2**31)),
    )


def degrade(image: RgbImage, d: Degradation, face_width_px: float) -> RgbImage:
    """The image with degradation d applied; face_width_px is how wide the face is in this image now.

    >>> img = np.full((40, 40, 3), 128, np.uint8)
    >>> degrade(img, Degradation(), 30.0) is img
    True
    >>> degrade(img, Degradation(face_width=10.0, jpeg_quality=20), 30.0).shape
    (40, 40, 3)
    """
    if d.is_clean:
        return image
    out = image.copy()
    h, w = out.shape[:2]
    if d.occlusion is not None:
        x, y, ow, oh = d.occlusion
        grey = int(np.random.default_rng(d.noise_seed).integers(0, 256))
        out[int(y * h) : int((y + oh) * h), int(x * w) : int((x + ow) * w)] = grey
    if d.face_width is not None and d.face_width < face_width_px:
        scale = d.face_width / face_width_px
        small = cv2.resize(out, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        out = np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
    if d.blur_sigma > 0:
        out = np.asarray(cv2.GaussianBlur(out, (0, 0), d.blur_sigma), dtype=np.uint8)
    if d.noise_std > 0:
        noise = np.random.default_rng(d.noise_seed).normal(0.0, d.noise_std, out.shape)
        out = np.clip(out.astype(np.float64) + noise, 0, 255).astype(np.uint8)
    if d.jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, d.jpeg_quality])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        if decoded is not None:
            out = np.ascontiguousarray(decoded[:, :, ::-1], dtype=np.uint8)
    return np.ascontiguousarray(out, dtype=np.uint8)


def ladder(steps: int, face_width_px: float, min_width: float = 16.0) -> list[Degradation]:
    """Ever stronger degradations, the first one none: fewer pixels, more blur, lower JPEG quality together.

    >>> [round(d.face_width or 0) for d in ladder(4, 100.0)]
    [0, 54, 29, 16]
    """
    out = [Degradation()]
    for i in range(1, steps):
        t = i / (steps - 1)
        out.append(
            Degradation(
                face_width=float(face_width_px * (min_width / face_width_px) ** t),
                blur_sigma=1.5 * t,
                jpeg_quality=int(round(90 - 70 * t)),
            )
        )
    return out
