"""Face alignment geometry: the 5-point similarity transform and the box-plus-margin crop.

Both crops are expressed as a 2x3 affine matrix mapping source pixels to crop pixels, so the caller
applies either with one ``cv2.warpAffine`` (training and the service share this code).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from facecore.constants import TEMPLATE_SIZES, TEMPLATES
from facecore.errors import AlignmentError

FloatArray = npt.NDArray[np.float64]


def template_points(name: str, size: int | None = None) -> FloatArray:
    """The named 5-point template (5, 2), rescaled to a square crop of ``size`` pixels if given."""
    if name not in TEMPLATES:
        raise AlignmentError(f"unknown alignment template {name!r}; known: {sorted(TEMPLATES)}")
    pts = np.asarray(TEMPLATES[name], dtype=np.float64)
    if size is not None:
        pts = pts * (size / TEMPLATE_SIZES[name])
    return pts


def estimate_similarity_transform(src: npt.ArrayLike, dst: npt.ArrayLike) -> FloatArray:
    """Least-squares similarity transform (rotation, uniform scale, translation) taking src onto dst.

    Umeyama (1991), without reflection. Returns the 2x3 matrix M with dst ~ M @ [x, y, 1].

    >>> M = estimate_similarity_transform([[0, 0], [1, 0], [0, 1]], [[1, 1], [3, 1], [1, 3]])
    >>> (np.round(M, 6) + 0.0).tolist()  # + 0.0 turns an SVD's -0.0 into 0.0
    [[2.0, 0.0, 1.0], [0.0, 2.0, 1.0]]
    """
    s = np.asarray(src, dtype=np.float64)
    d = np.asarray(dst, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != 2 or s.shape != d.shape or s.shape[0] < 2:
        raise AlignmentError(f"need matching (N>=2, 2) point sets, got {s.shape} and {d.shape}")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(d))):
        raise AlignmentError("landmarks must be finite")
    n = s.shape[0]
    mean_s, mean_d = s.mean(axis=0), d.mean(axis=0)
    sc, dc = s - mean_s, d - mean_d
    var_s = float((sc**2).sum() / n)
    if var_s < 1e-12:
        raise AlignmentError("source landmarks are all at one point; no transform is defined")
    cov = dc.T @ sc / n
    u, sig, vt = np.linalg.svd(cov)
    fix = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[1, 1] = -1.0
    rot = u @ fix @ vt
    scale = float(np.trace(np.diag(sig) @ fix) / var_s)
    out = np.zeros((2, 3))
    out[:, :2] = scale * rot
    out[:, 2] = mean_d - scale * rot @ mean_s
    return out


def template_warp_matrix(landmarks: npt.ArrayLike, template: str, size: int) -> FloatArray:
    """Affine matrix aligning 5 detected landmarks (5, 2) to the named template in a size x size crop."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (5, 2):
        raise AlignmentError(f"need 5 landmarks of shape (5, 2), got {lm.shape}")
    return estimate_similarity_transform(lm, template_points(template, size))


def box_margin_matrix(
    box: npt.ArrayLike,
    margin_px: float,
    image_hw: tuple[int, int],
    out_hw: tuple[int, int],
    margin_ratio: float = 0.0,
    clip: bool = True,
) -> FloatArray:
    """Affine matrix for a FaceNet-style crop: the box grown by half the margin per side, then resized.

    Args:
        box: detector box (x1, y1, x2, y2) in source pixels.
        margin_px: total margin added across each axis, in source pixels.
        image_hw: source image (height, width), for clipping.
        out_hw: crop (height, width).
        margin_ratio: further total margin across each axis, as a fraction of the box's width / height.
        clip: clip the grown box to the image (FaceNet's preprocessing); otherwise the crop keeps its shape
            and whatever falls outside the image is left to the warp's border (black).
    """
    b = np.asarray(box, dtype=np.float64).ravel()
    if b.shape != (4,) or not np.all(np.isfinite(b)):
        raise AlignmentError(f"box must be 4 finite numbers (x1, y1, x2, y2), got {b.tolist()}")
    h, w = image_hw
    grow_x = (margin_px + margin_ratio * (b[2] - b[0])) / 2.0
    grow_y = (margin_px + margin_ratio * (b[3] - b[1])) / 2.0
    x1, y1, x2, y2 = b[0] - grow_x, b[1] - grow_y, b[2] + grow_x, b[3] + grow_y
    if clip:
        x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(w)), min(y2, float(h))
    inside_w = min(x2, float(w)) - max(x1, 0.0)
    inside_h = min(y2, float(h)) - max(y1, 0.0)
    if inside_w < 1.0 or inside_h < 1.0:
        raise AlignmentError(f"box {b.tolist()} leaves no area inside a {w}x{h} image")
    sx = out_hw[1] / (x2 - x1)
    sy = out_hw[0] / (y2 - y1)
    # Pixel centres sit at integer coordinates (cv2 convention), so the half-pixel terms make this equal to
    # cropping [x1, x2) x [y1, y2) and resizing it, as FaceNet's own preprocessing does.
    return np.array([[sx, 0.0, sx * (0.5 - x1) - 0.5], [0.0, sy, sy * (0.5 - y1) - 0.5]])
