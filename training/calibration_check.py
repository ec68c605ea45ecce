"""Does a calibration hold on other people? Each operating point's observed FAR and FRR on a held-out sample, with
the interval that says whether the promise FAR <= target survives (used by `dprime calibrate --check` and the
default-model recipe's honesty check)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel
from scipy.stats import binom

from facecore.calibration import frr_at
from facecore.decidability import far_identity_interval
from facecore.errors import CalibrationError
from facecore.manifest import ModelManifest
from training.calibrate import ScoredPairs


class CheckRow(BaseModel):
    """Observed error rates of one operating point on a held-out sample.

    ``target_interval`` is the central 95 % range of the FAR a sample of this many impostor pairs would show
    if the true FAR were the target and the pairs were independent (binomial). Pairs that share people are
    not, so ``observed_interval`` resamples the people instead (a 95 % identity bootstrap of the observed FAR).
    Thresholds are chosen so that the calibration's own interval stays at or below the target, so the promise
    FAR <= target holds on these people unless the whole observed interval lies above it (``holds``).
    """

    name: str
    target_far: float | None
    threshold: float
    calibrated_far: float
    observed_far: float
    target_interval: tuple[float, float] | None
    observed_within_interval: bool | None
    observed_interval: tuple[float, float] | None = None
    target_within_observed_interval: bool | None = None
    holds: bool | None = None
    observed_frr: float
    n_genuine: int
    n_impostor: int


def binomial_interval(rate: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Central interval of k/n for k ~ Binomial(n, rate)."""
    lo, hi = binom.interval(confidence, n, rate)
    return float(lo) / n, float(hi) / n


def check_operating_points(manifest: ModelManifest, sample: ScoredPairs, n_boot: int = 1000) -> list[CheckRow]:
    """Observed FAR/FRR of each operating point on another sample; is each target inside the FAR interval?"""
    if manifest.calibration is None:
        raise CalibrationError(f"model {manifest.model_id!r} is not calibrated")
    gen, imp = sample.genuine, sample.impostor
    rows = []
    for p in manifest.calibration.operating_points:
        observed = float(np.count_nonzero(imp >= p.threshold) / imp.size)
        interval = None if p.target_far is None else binomial_interval(p.target_far, imp.size)
        by_people = None
        if p.target_far is not None and sample.impostor_ids is not None:
            by_people = far_identity_interval(imp, sample.impostor_ids, p.threshold, n_boot=n_boot)
        rows.append(
            CheckRow(
                name=p.name,
                target_far=p.target_far,
                threshold=p.threshold,
                calibrated_far=p.far,
                observed_far=observed,
                target_interval=interval,
                observed_within_interval=None if interval is None else bool(interval[0] <= observed <= interval[1]),
                observed_interval=by_people,
                target_within_observed_interval=(
                    None if by_people is None or p.target_far is None else by_people[0] <= p.target_far <= by_people[1]
                ),
                holds=None if by_people is None or p.target_far is None else by_people[0] <= p.target_far,
                observed_frr=frr_at(gen, p.threshold),
                n_genuine=int(gen.size),
                n_impostor=int(imp.size),
            )
        )
    return rows
