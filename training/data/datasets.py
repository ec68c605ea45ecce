"""Labelled face datasets: aligned identity folders, InsightFace RecordIO, and a synthetic set for smoke runs.

Each yields (RGB uint8 image (H, W, 3), label) and exposes ``labels`` (N,) and ``class_names``, which is all
the P x K sampler and the class-mean warm start need.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from facecore.errors import DprimeError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
RgbImage = npt.NDArray[np.uint8]


class DatasetError(DprimeError):
    """A dataset is missing, empty or malformed."""


class FaceDataset(Protocol):
    """What training needs from a dataset."""

    labels: npt.NDArray[np.int64]
    class_names: list[str]

    def __len__(self) -> int:
        """Number of images."""
        ...

    def __getitem__(self, index: int) -> tuple[RgbImage, int]:
        """RGB uint8 image and its label."""
        ...


def read_rgb(path: Path) -> RgbImage:
    """Read an image file as RGB uint8."""
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"cannot decode image {path}")
    return np.ascontiguousarray(img[:, :, ::-1])


def read_name_list(path: Path | None) -> set[str] | None:
    """Identity names, one per line (blank lines and #comments ignored)."""
    if path is None:
        return None
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return {ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")}


class IdentityFolderDataset:
    """``root/<identity>/<image>``; labels follow the sorted identity names."""

    def __init__(
        self, root: Path, include: set[str] | None = None, exclude: set[str] | None = None, min_images: int = 1
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"no dataset folder at {root}")
        names = sorted(p.name for p in root.iterdir() if p.is_dir())
        if include is not None:
            names = [n for n in names if n in include]
        if exclude is not None:
            names = [n for n in names if n not in exclude]
        paths: list[Path] = []
        labels: list[int] = []
        self.class_names: list[str] = []
        for name in names:
            files = sorted(f for f in (root / name).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if len(files) < min_images:
                continue
            label = len(self.class_names)
            self.class_names.append(name)
            paths += files
            labels += [label] * len(files)
        if not paths:
            raise DatasetError(f"no images under {root} (identity folders holding .jpg/.png files)")
        self.paths = paths
        self.labels = np.asarray(labels, dtype=np.int64)
        logger.info("dataset %s: %d images of %d identities", root, len(paths), len(self.class_names))

    def __len__(self) -> int:
        """Number of images."""
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[RgbImage, int]:
        """RGB image and label."""
        return read_rgb(self.paths[index]), int(self.labels[index])


class SyntheticFaceDataset:
    """Each class is a fixed random smooth pattern; each image adds its own noise (learnable, deterministic)."""

    def __init__(
        self, num_classes: int, images_per_class: int, size: tuple[int, int], noise: float, seed: int = 0
    ) -> None:
        rng = np.random.default_rng(seed)
        h, w = size
        coarse = rng.uniform(0, 255, (num_classes, max(h // 8, 2), max(w // 8, 2), 3)).astype(np.float32)
        self._patterns = np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_CUBIC) for c in coarse])
        self._noise = noise
        self._seed = seed
        self.labels = np.repeat(np.arange(num_classes, dtype=np.int64), images_per_class)
        self.class_names = [f"class_{c:04d}" for c in range(num_classes)]

    def __len__(self) -> int:
        """Number of images."""
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[RgbImage, int]:
        """Pattern of the label plus per-image noise."""
        label = int(self.labels[index])
        rng = np.random.default_rng((self._seed, index))
        img = self._patterns[label] + rng.normal(0, 255 * self._noise, self._patterns[label].shape)
        return np.clip(img, 0, 255).astype(np.uint8), label


def class_index(labels: Sequence[int] | npt.NDArray[np.int64]) -> dict[int, npt.NDArray[np.int64]]:
    """label -> indices of its images."""
    arr = np.asarray(labels)
    order = np.argsort(arr, kind="stable")
    uniq, starts = np.unique(arr[order], return_index=True)
    ends = np.append(starts[1:], len(arr))
    return {int(u): order[s:e] for u, s, e in zip(uniq, starts, ends, strict=True)}
