"""A dataset seen clean and in degraded copies: item i is copy i % (copies + 1) of image i // (copies + 1).

Copy 0 is the image itself; the others are drawn once from a generator seeded by (seed, image, copy), so they
are the same in every epoch, run and worker (and a frozen trunk's features of them can be cached).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from training.data.datasets import FaceDataset, RgbImage
from training.degrade import Degradation, DegradeConfig, degrade, sample_degradation


class DegradedViews:
    """Every image of a dataset followed by its degraded copies, same label."""

    def __init__(self, base: FaceDataset, config: DegradeConfig, face_width_share: float) -> None:
        """face_width_share: the face's width as a share of the crop's (1 / (1 + margin) for a box crop)."""
        self.base = base
        self.config = config
        self.face_width_share = face_width_share
        self.per_image = config.copies + 1
        self.labels: npt.NDArray[np.int64] = np.repeat(base.labels, self.per_image)
        self.class_names = base.class_names

    def __len__(self) -> int:
        """Images times copies."""
        return len(self.base) * self.per_image

    def degradation(self, index: int) -> Degradation:
        """What item index does to its image."""
        image, copy = divmod(index, self.per_image)
        if copy == 0:
            return Degradation()
        return sample_degradation(np.random.default_rng((self.config.seed, image, copy)), self.config)

    def __getitem__(self, index: int) -> tuple[RgbImage, int]:
        """The degraded copy and its label."""
        img, label = self.base[index // self.per_image]
        return degrade(img, self.degradation(index), self.face_width_share * img.shape[1]), label
