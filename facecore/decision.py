"""The decision rule: one place that turns a score and its faces' certainty into a promise (no HTTP here).

Verify: ``match`` when the cosine reaches the accept threshold of the pair's quality band, ``non_match`` when it
falls below the reject threshold, ``uncertain`` only in between. Identify: the best candidate is a ``match`` when
its cosine reaches the threshold kept for the gallery's size, ``unknown`` below the reject threshold of its band,
``uncertain`` in between. See docs/method.md for what each answer promises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from facecore.decision_records import BandRecord, DecisionRecord, IdentificationPoint, IdentificationRecord

Outcome = Literal["match", "non_match", "uncertain"]
SearchOutcome = Literal["match", "unknown", "uncertain"]


def pair_quality(kappa_a: float, kappa_b: float) -> float:
    """A pair is as certain as its less certain face."""
    return min(kappa_a, kappa_b)


@dataclass(frozen=True)
class BestOfN:
    """A probe against each of one person's n faces: the closest face, and what the comparison's FAR becomes."""

    index: int
    cosine: float
    far_bound: float


def best_of_n(probe_mu: npt.NDArray[np.float64], faces_mu: npt.NDArray[np.floating], target_far: float) -> BestOfN:
    """The face most similar to the probe. Taking the best of n comparisons gives a stranger n chances, so the
    FAR of the answer is at most n times one comparison's (the union bound, capped at 1).

    >>> b = best_of_n(np.array([1.0, 0.0]), np.array([[0.0, 1.0], [0.6, 0.8], [0.8, 0.6]]), 1e-3)
    >>> b.index, round(b.cosine, 2), b.far_bound
    (2, 0.8, 0.003)
    """
    cosines = np.asarray(faces_mu, dtype=np.float64) @ probe_mu
    best = int(np.argmax(cosines))
    return BestOfN(best, float(cosines[best]), min(1.0, cosines.size * target_far))


@dataclass(frozen=True)
class Verdict:
    """A 1:1 outcome with the band and thresholds it came from."""

    decision: Outcome
    band: BandRecord
    quality: float
    accept: float
    reject: float
    log10_lr: float
    reason: str | None


def decide(score: float, quality: float, rule: DecisionRecord) -> Verdict:
    """Three-way decision of one pair.

    >>> from facecore.decision_records import BandRecord, DecisionRecord
    >>> band = BandRecord(name="all", quality_low=None, quality_high=None, resolved=True, accept_threshold=0.5,
    ...     reject_threshold=0.3, target_far=1e-3, far=9e-4, far_interval=(5e-4, 1e-3), frr=0.1, miss_bound=0.02,
    ...     miss_rate=0.019, miss_interval=(0.01, 0.02), n_genuine=1000, n_impostor=100000, n_identities=100,
    ...     llr_slope=10.0, llr_intercept=-4.0)
    >>> rule = DecisionRecord(name="far_1e-3", target_far=1e-3, miss_bound=0.02, confidence=0.95,
    ...     min_pairs_factor=10, min_identities=20, n_boot=10, overall=band, bands=[band], cllr=0.1, cllr_overall=0.1)
    >>> [decide(s, 20.0, rule).decision for s in (0.6, 0.4, 0.1)]
    ['match', 'uncertain', 'non_match']
    """
    band = rule.band_for(quality)
    accept = band.accept_threshold
    reject = min(band.reject_threshold, accept)
    reason = None
    if score >= accept:
        outcome: Outcome = "match"
    elif score < reject:
        outcome = "non_match"
    else:
        outcome = "uncertain"
        reason = (
            f"cosine {score:.4f} lies between the reject threshold {reject:.4f} and the accept threshold "
            f"{accept:.4f} of quality band {band.name!r}: accepting would break FAR {band.target_far:g} and "
            f"rejecting would break the miss bound {band.miss_bound:g} for pairs of this quality"
        )
    return Verdict(outcome, band, quality, accept, reject, band.log10_lr(score), reason)


def hit_decision(score: float, accept: float, reject: float) -> Outcome:
    """One search candidate against a search's thresholds."""
    if score >= accept:
        return "match"
    return "non_match" if score < reject else "uncertain"


@dataclass(frozen=True)
class SearchVerdict:
    """A 1:N outcome: the threshold kept for this gallery size and whether the calibration covers that size."""

    result: SearchOutcome
    point: IdentificationPoint
    resolved: bool
    band: BandRecord
    accept: float
    reject: float
    reason: str | None


def decide_search(
    best_score: float | None, quality: float, gallery_size: int, rule: DecisionRecord, ident: IdentificationRecord
) -> SearchVerdict:
    """Open-set outcome of a search whose best candidate scored best_score (None: empty gallery)."""
    point, resolved = ident.point_for(max(gallery_size, 1))
    band = rule.band_for(quality)
    accept = point.threshold
    reject = min(band.reject_threshold, accept)
    reason = None
    if not resolved:
        reason = (
            f"the calibration resolves FPIR {ident.target_fpir:g} for galleries of up to {ident.max_gallery_size} "
            f"faces; this one has {gallery_size}, so the threshold of the largest calibrated size is used"
        )
    if best_score is None or best_score < reject:
        result: SearchOutcome = "unknown"
    elif best_score >= accept:
        result = "match"
    else:
        result = "uncertain"
        reason = (
            f"the best cosine {best_score:.4f} lies between the reject threshold {reject:.4f} of quality band "
            f"{band.name!r} and the threshold {accept:.4f} that keeps FPIR {ident.target_fpir:g} for "
            f"{point.gallery_size} faces"
        ) + (f"; {reason}" if reason else "")
    return SearchVerdict(result, point, resolved, band, accept, reject, reason)
