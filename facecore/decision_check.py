"""Does a three-way rule keep its promises on other people? Observed rates per band with identity intervals.

Used on the evaluated people of a benchmark and on a service's own enrolled gallery (docs/operations.md).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from facecore.decision_fit import LabelledScores, band_indices
from facecore.decision_records import DecisionRecord

FloatArray = npt.NDArray[np.float64]


class BandCheck(BaseModel):
    """Observed rates of one band's thresholds on a sample, with identity-bootstrap intervals."""

    band: str
    quality_low: float | None
    quality_high: float | None
    target_far: float
    accept_threshold: float
    observed_far: float | None
    far_interval: tuple[float, float] | None
    n_impostor: int
    miss_bound: float
    reject_threshold: float
    observed_miss: float | None
    miss_interval: tuple[float, float] | None
    n_genuine: int
    n_identities: int
    far_holds: bool | None
    miss_holds: bool | None


def rate_interval(
    flags: npt.NDArray[np.bool_], people: npt.NDArray[np.int64], n_boot: int, confidence: float, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the share of flagged pairs when the people are resampled with replacement.

    A pair of two people weighs the product of their draws; a genuine pair (both columns equal) its person's draw.
    """
    used, idx = np.unique(people, return_inverse=True)
    idx = idx.reshape(people.shape)
    genuine = idx[:, 0] == idx[:, 1]
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        counts = rng.multinomial(used.size, np.full(used.size, 1.0 / used.size)).astype(np.float64)
        w = np.where(genuine, counts[idx[:, 0]], counts[idx[:, 0]] * counts[idx[:, 1]])
        total = w.sum()
        reps[b] = np.nan if total == 0 else float(w @ flags / total)
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.nanquantile(reps, [tail, 1.0 - tail])
    return float(lo), float(hi)


def check_decision(record: DecisionRecord, sample: LabelledScores, n_boot: int = 200) -> list[BandCheck]:
    """Each band's observed FAR (impostors at or above its accept threshold) and miss rate (genuine pairs called
    non_match) on the sample's pairs of that band's quality; a promise holds when its interval reaches the target."""
    idx = band_indices(record, sample.quality)
    out = []
    for i, band in [(-1, record.overall), *enumerate(record.bands)]:
        mask = idx == i
        if not mask.any():
            continue
        part = sample.subset(mask)
        accept = band.accept_threshold
        reject = min(band.reject_threshold, accept)
        imp, gen = ~part.same, part.same
        far = float(np.mean(part.scores[imp] >= accept)) if imp.any() else None
        miss = float(np.mean(part.scores[gen] < reject)) if gen.any() else None
        far_iv = (
            rate_interval(part.scores[imp] >= accept, part.people[imp], n_boot, record.confidence)
            if imp.sum() >= 2
            else None
        )
        miss_iv = (
            rate_interval(part.scores[gen] < reject, part.people[gen], n_boot, record.confidence, seed=1)
            if gen.sum() >= 2
            else None
        )
        out.append(
            BandCheck(
                band=band.name,
                quality_low=band.quality_low,
                quality_high=band.quality_high,
                target_far=band.target_far,
                accept_threshold=accept,
                observed_far=far,
                far_interval=far_iv,
                n_impostor=int(imp.sum()),
                miss_bound=band.miss_bound,
                reject_threshold=reject,
                observed_miss=miss,
                miss_interval=miss_iv,
                n_genuine=int(gen.sum()),
                n_identities=int(np.unique(part.people).size),
                far_holds=None if far_iv is None else far_iv[0] <= band.target_far,
                miss_holds=None if miss_iv is None else miss_iv[0] <= band.miss_bound,
            )
        )
    return out
