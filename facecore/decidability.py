"""The decidability index d' and its bootstrap confidence interval (docs/method.md, "Decidability d′").

d' = (mu_g - mu_i) / sqrt((var_g + var_i) / 2), signed (positive when genuine pairs score higher), with
unbiased variances. Pairs that share identities are not independent, so the honest interval resamples
identities (a two-way cluster bootstrap) rather than pairs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from facecore.calibration import as_scores
from facecore.errors import CalibrationError

FloatArray = npt.NDArray[np.float64]


class ScoreStats(BaseModel):
    """Mean, unbiased standard deviation and count of one score sample."""

    model_config = ConfigDict(frozen=True)

    mean: float
    std: float
    count: int


class DPrimeInterval(BaseModel):
    """d' with a bootstrap percentile interval."""

    model_config = ConfigDict(frozen=True)

    value: float
    low: float
    high: float
    confidence: float
    n_boot: int
    method: Literal["pairs", "identities"]


def score_stats(scores: npt.ArrayLike, name: str) -> ScoreStats:
    """Mean, unbiased std and count of a sample of at least two scores."""
    arr = as_scores(scores, name, min_count=2)
    return ScoreStats(mean=float(arr.mean()), std=float(arr.std(ddof=1)), count=int(arr.size))


def d_prime(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> float:
    """Signed decidability index with unbiased variances.

    >>> import math
    >>> c = math.cos(math.radians(30))
    >>> round(d_prime([c, c], [0.0, -0.5, 0.5, 0.0]), 6)
    3.0
    """
    gen = as_scores(genuine, "genuine", min_count=2)
    imp = as_scores(impostor, "impostor", min_count=2)
    return _d_prime_weighted(gen, np.ones_like(gen), imp, np.ones_like(imp))


def _d_prime_weighted(gen: FloatArray, w_gen: FloatArray, imp: FloatArray, w_imp: FloatArray) -> float:
    """d' with frequency weights (a bootstrap replicate's multiplicities); unbiased weighted variances."""
    mg, vg = _weighted_mean_var(gen, w_gen)
    mi, vi = _weighted_mean_var(imp, w_imp)
    pooled = np.sqrt(0.5 * (vg + vi))
    if pooled == 0:
        if mg == mi:
            return 0.0
        return float(np.copysign(np.inf, mg - mi))
    return float((mg - mi) / pooled)


def _weighted_mean_var(x: FloatArray, w: FloatArray) -> tuple[float, float]:
    total = float(w.sum())
    if total < 2:
        return float(np.nan), float(np.nan)
    mean = float(np.dot(w, x) / total)
    var = float(np.dot(w, (x - mean) ** 2) / (total - 1.0))
    return mean, var


def d_prime_interval(
    genuine: npt.ArrayLike,
    impostor: npt.ArrayLike,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    genuine_ids: npt.ArrayLike | None = None,
    impostor_ids: npt.ArrayLike | None = None,
) -> DPrimeInterval:
    """d' with a percentile bootstrap interval.

    Without identities, genuine and impostor pairs are resampled independently. With identities
    (``genuine_ids`` of shape (n_g,), ``impostor_ids`` of shape (n_i, 2)), identities are resampled with
    replacement and each pair enters a replicate as often as the product of its identities' draws.

    Args:
        genuine: genuine scores (n_g,).
        impostor: impostor scores (n_i,).
        n_boot: number of bootstrap replicates.
        confidence: coverage of the interval, in (0, 1).
        seed: seed of the replicate generator.
        genuine_ids: identity label of each genuine pair.
        impostor_ids: the two identity labels of each impostor pair.
    """
    gen = as_scores(genuine, "genuine", min_count=2)
    imp = as_scores(impostor, "impostor", min_count=2)
    _check_bootstrap(n_boot, confidence)
    rng = np.random.default_rng(seed)
    value = d_prime(gen, imp)
    if (genuine_ids is None) != (impostor_ids is None):
        raise CalibrationError("give both genuine_ids and impostor_ids, or neither")
    if genuine_ids is None or impostor_ids is None:
        reps = _pair_replicates(gen, imp, n_boot, rng)
        method: Literal["pairs", "identities"] = "pairs"
    else:
        reps = _identity_replicates(gen, imp, np.asarray(genuine_ids), np.asarray(impostor_ids), n_boot, rng)
        method = "identities"
    low, high = _percentile_interval(reps, n_boot, confidence)
    return DPrimeInterval(value=value, low=low, high=high, confidence=confidence, n_boot=n_boot, method=method)


def _check_bootstrap(n_boot: int, confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise CalibrationError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 10:
        raise CalibrationError(f"n_boot must be >= 10, got {n_boot}")


def _percentile_interval(reps: FloatArray, n_boot: int, confidence: float) -> tuple[float, float]:
    """Central percentile interval of the defined replicates (refused when fewer than half are defined)."""
    reps = reps[np.isfinite(reps)]
    if reps.size < n_boot // 2:
        raise CalibrationError(f"only {reps.size} of {n_boot} bootstrap replicates were defined; too few pairs")
    tail = 0.5 * (1.0 - confidence)
    low, high = np.quantile(reps, [tail, 1.0 - tail])
    return float(low), float(high)


def _identity_draws(n_ids: int, n_boot: int, rng: np.random.Generator) -> Iterator[FloatArray]:
    """How often each identity is drawn in each of n_boot resamples of the identities, with replacement."""
    for _ in range(n_boot):
        yield rng.multinomial(n_ids, np.full(n_ids, 1.0 / n_ids)).astype(np.float64)


def _pair_replicates(gen: FloatArray, imp: FloatArray, n_boot: int, rng: np.random.Generator) -> FloatArray:
    out = np.empty(n_boot)
    for b in range(n_boot):
        wg = rng.multinomial(gen.size, np.full(gen.size, 1.0 / gen.size)).astype(np.float64)
        wi = rng.multinomial(imp.size, np.full(imp.size, 1.0 / imp.size)).astype(np.float64)
        out[b] = _d_prime_weighted(gen, wg, imp, wi)
    return out


def _identity_index(
    genuine_ids: npt.NDArray[np.generic], impostor_ids: npt.NDArray[np.generic]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], int]:
    """Integer identity of each genuine pair (n_g,) and of both sides of each impostor pair (n_i, 2)."""
    labels, inverse = np.unique(np.concatenate([genuine_ids.ravel(), impostor_ids.ravel()]), return_inverse=True)
    return inverse[: genuine_ids.size], inverse[genuine_ids.size :].reshape(-1, 2), int(labels.size)


def _identity_replicates(
    gen: FloatArray,
    imp: FloatArray,
    genuine_ids: npt.NDArray[np.generic],
    impostor_ids: npt.NDArray[np.generic],
    n_boot: int,
    rng: np.random.Generator,
) -> FloatArray:
    if genuine_ids.shape != gen.shape:
        raise CalibrationError(f"genuine_ids must have shape {gen.shape}, got {genuine_ids.shape}")
    if impostor_ids.shape != (imp.size, 2):
        raise CalibrationError(f"impostor_ids must have shape {(imp.size, 2)}, got {impostor_ids.shape}")
    g_idx, i_idx, n_ids = _identity_index(genuine_ids, impostor_ids)
    out = np.empty(n_boot)
    for b, counts in enumerate(_identity_draws(n_ids, n_boot, rng)):
        out[b] = _d_prime_weighted(gen, counts[g_idx], imp, counts[i_idx[:, 0]] * counts[i_idx[:, 1]])
    return out


def far_identity_interval(
    impostor: npt.ArrayLike,
    impostor_ids: npt.ArrayLike,
    threshold: float,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of the FAR at ``threshold`` when the people, not the pairs, are resampled.

    Impostor pairs that share a person are not independent (one look-alike raises many pairs at once), so a
    binomial interval over pairs is too narrow to judge whether a threshold holds on other people; this one
    resamples identities with replacement, each pair weighted by the product of its two identities' draws.

    Args:
        impostor: impostor scores (n_i,).
        impostor_ids: the two identity labels of each impostor pair (n_i, 2).
        threshold: accept when score >= threshold.
        n_boot: number of bootstrap replicates.
        confidence: coverage of the interval, in (0, 1).
        seed: seed of the replicate generator.
    """
    imp = as_scores(impostor, "impostor", min_count=2)
    ids = np.asarray(impostor_ids)
    if ids.shape != (imp.size, 2):
        raise CalibrationError(f"impostor_ids must have shape {(imp.size, 2)}, got {ids.shape}")
    _check_bootstrap(n_boot, confidence)
    _, i_idx, n_ids = _identity_index(np.empty(0, dtype=ids.dtype), ids)
    accepted = (imp >= threshold).astype(np.float64)
    reps = np.empty(n_boot)
    for b, counts in enumerate(_identity_draws(n_ids, n_boot, np.random.default_rng(seed))):
        w = counts[i_idx[:, 0]] * counts[i_idx[:, 1]]
        total = w.sum()
        reps[b] = np.nan if total == 0 else float(w @ accepted / total)
    return _percentile_interval(reps, n_boot, confidence)


def tar_identity_interval(
    genuine: npt.ArrayLike,
    genuine_ids: npt.ArrayLike,
    impostor: npt.ArrayLike,
    impostor_ids: npt.ArrayLike,
    target_far: float,
    n_boot: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of the TAR at a target FAR when the people are resampled (threshold refitted each time).

    Each replicate weights every pair by its people's draws, places the threshold where the weighted impostor
    share at or above it first stays within target_far, and reads the weighted share of genuine pairs above it.

    >>> rng = np.random.default_rng(0)
    >>> gen, imp = rng.normal(0.7, 0.1, 2000), rng.normal(0.1, 0.1, 20000)
    >>> lo, hi = tar_identity_interval(gen, rng.integers(0, 100, 2000), imp, rng.integers(0, 100, (20000, 2)), 1e-2)
    >>> bool(0.9 < lo < hi <= 1.0)
    True
    """
    gen = as_scores(genuine, "genuine", min_count=2)
    imp = as_scores(impostor, "impostor", min_count=2)
    g_ids, i_ids = np.asarray(genuine_ids), np.asarray(impostor_ids)
    _check_bootstrap(n_boot, confidence)
    g_idx, i_idx, n_ids = _identity_index(g_ids, i_ids)
    order = np.argsort(-imp, kind="stable")
    desc = imp[order]
    reps = np.empty(n_boot)
    for b, counts in enumerate(_identity_draws(n_ids, n_boot, np.random.default_rng(seed))):
        w_imp = (counts[i_idx[:, 0]] * counts[i_idx[:, 1]])[order]
        w_gen = counts[g_idx]
        if w_imp.sum() == 0 or w_gen.sum() == 0:
            reps[b] = np.nan
            continue
        share = np.cumsum(w_imp) / w_imp.sum()
        over = np.nonzero(share > target_far)[0]
        threshold = float(np.nextafter(desc[over[0]], np.inf)) if over.size else float(desc[-1])
        reps[b] = float(w_gen @ (gen >= threshold) / w_gen.sum())
    return _percentile_interval(reps, n_boot, confidence)
