"""P identities x K images per batch, deterministic in (seed, epoch) so a resumed run sees the same batches."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from training.data.datasets import class_index


class PKBatchSampler:
    """Batches of ``p`` identities with ``k`` images each (drawn with replacement when an identity has fewer).

    With several processes each rank takes every ``world``-th batch of the same global order.
    """

    def __init__(
        self,
        labels: npt.NDArray[np.int64],
        p: int,
        k: int,
        seed: int,
        steps_per_epoch: int | None = None,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.by_class = class_index(labels)
        if len(self.by_class) < p:
            raise ValueError(f"a batch wants {p} identities but the dataset has {len(self.by_class)}")
        self.p, self.k, self.seed, self.rank, self.world = p, k, seed, rank, world
        default = max(1, len(labels) // (p * k))
        self.steps_per_epoch = steps_per_epoch or default
        self.steps_per_rank = max(1, self.steps_per_epoch // world)

    def epoch_batches(self, epoch: int) -> list[npt.NDArray[np.int64]]:
        """This rank's batches of one epoch (index arrays of length p * k)."""
        rng = np.random.default_rng((self.seed, epoch))
        classes = np.array(sorted(self.by_class))
        batches = []
        for _ in range(self.steps_per_rank * self.world):
            chosen = rng.choice(classes, size=self.p, replace=False)
            idx = []
            for c in chosen:
                pool = self.by_class[int(c)]
                idx.append(rng.choice(pool, size=self.k, replace=len(pool) < self.k))
            batches.append(np.concatenate(idx))
        return batches[self.rank :: self.world]
