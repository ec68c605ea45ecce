"""Real face photos for tests, from scikit-image's bundled data (so they exist on a fresh machine)."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
from PIL import Image


@cache
def astronaut() -> np.ndarray:
    """Eileen Collins (public-domain NASA photo shipped with scikit-image), 512x512 RGB, one face."""
    from skimage import data

    return np.asarray(data.astronaut(), dtype=np.uint8)


def encode(image: np.ndarray, fmt: str = "JPEG", **kwargs: object) -> bytes:
    """Encode an RGB array."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def astronaut_jpeg() -> bytes:
    """The astronaut as JPEG."""
    return encode(astronaut(), "JPEG", quality=95)


def astronaut_variant_jpeg() -> bytes:
    """The same person, mirrored and cropped: a different photo for the tiny test model."""
    return encode(np.ascontiguousarray(astronaut()[20:470, ::-1]), "JPEG", quality=90)


def two_faces_jpeg() -> bytes:
    """Two copies of the astronaut side by side, the right one smaller."""
    img = astronaut()
    small = np.asarray(Image.fromarray(img).resize((384, 384)))
    canvas = np.full((512, 900, 3), 255, dtype=np.uint8)
    canvas[:, :512] = img
    canvas[64:448, 512:896] = small
    return encode(canvas)


def no_face_png() -> bytes:
    """A smooth gradient with no face."""
    x = np.linspace(0, 255, 256, dtype=np.uint8)
    return encode(np.stack([np.tile(x, (256, 1))] * 3, axis=-1), "PNG")
