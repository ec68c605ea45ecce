"""Fitting three-way decision thresholds that hold on other people, with likelihood ratios (docs/method.md).

Pairs that share a person are not independent, so every rate here is held to the upper end of an identity
bootstrap: the people are resampled with replacement and each pair weighted by its people's draws. The accept
threshold is the lowest one whose FAR interval stays at or below the target; the reject threshold the highest
one whose miss-rate interval stays at or below the miss bound. A band with too few pairs for its targets is
marked unresolved, with the number of people it would need, and the overall band decides for it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facecore.decision_records import BandRecord, DecisionRecord
from facecore.errors import CalibrationError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
LN10 = math.log(10.0)


@dataclass(frozen=True)
class RuleParams:
    """The targets and statistical settings of one three-way rule fit (recorded in the manifest with the result).

    Its defaults live in DecisionSettings; a refit copies them from the rule it replaces.
    """

    target_far: float
    miss_bound: float
    n_bands: int
    confidence: float
    min_pairs_factor: float
    min_identities: int
    n_boot: int
    seed: int = 0


@dataclass(frozen=True)
class DecisionSettings:
    """Targets of the three-way and identification rules a calibration fits (recorded in the manifest)."""

    miss_bound: float = 0.02
    n_bands: int = 3
    min_identities: int = 20
    min_pairs_factor: float = 10.0
    confidence: float = 0.95
    fpir: float = 0.01

    def params(self, target_far: float, n_boot: int, seed: int = 0) -> RuleParams:
        """The rule parameters for one FAR target."""
        return RuleParams(
            target_far=target_far,
            miss_bound=self.miss_bound,
            n_bands=self.n_bands,
            confidence=self.confidence,
            min_pairs_factor=self.min_pairs_factor,
            min_identities=self.min_identities,
            n_boot=n_boot,
            seed=seed,
        )


@dataclass(frozen=True)
class LabelledScores:
    """Scores of a pair sample with each pair's quality and people (indices into a shared identity list)."""

    scores: FloatArray
    same: npt.NDArray[np.bool_]
    quality: FloatArray
    people: IntArray  # (n, 2); both columns equal for a genuine pair

    def subset(self, mask: npt.NDArray[np.bool_]) -> LabelledScores:
        """The pairs where mask holds."""
        return LabelledScores(self.scores[mask], self.same[mask], self.quality[mask], self.people[mask])


def _draws(n_ids: int, n_boot: int, seed: int) -> Iterator[FloatArray]:
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield rng.multinomial(n_ids, np.full(n_ids, 1.0 / n_ids)).astype(np.float64)


def _tail_ends(sorted_scores: FloatArray) -> IntArray:
    """Indices of the last element of each run of equal values in a sorted array."""
    if sorted_scores.size == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.nonzero(sorted_scores[1:] != sorted_scores[:-1])[0]
    return np.append(change, sorted_scores.size - 1).astype(np.int64)


def _upper(reps: FloatArray, confidence: float) -> FloatArray:
    """Upper end of the central percentile interval, per column (NaN replicates ignored)."""
    return np.nanquantile(reps, 1.0 - (1.0 - confidence) / 2.0, axis=0)


def _interval(reps: FloatArray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.nanquantile(reps, [tail, 1.0 - tail])
    return float(lo), float(hi)


def accept_threshold(
    impostor: FloatArray, people: IntArray, n_ids: int, target_far: float, params: RuleParams
) -> tuple[float, float, tuple[float, float]]:
    """Lowest threshold whose identity-bootstrap FAR upper bound is at most target_far: (t, FAR, interval).

    >>> rng = np.random.default_rng(1)
    >>> imp = rng.normal(0.0, 0.1, 20000)
    >>> people = rng.integers(0, 200, (20000, 2))
    >>> t, far, (lo, hi) = accept_threshold(imp, people, 200, 0.01, DecisionSettings().params(0.01, n_boot=50))
    >>> bool(far <= 0.01 and hi <= 0.01 and t > np.quantile(imp, 0.99))
    True
    """
    order = np.argsort(-impostor, kind="stable")
    desc = impostor[order]
    k = min(desc.size, int(math.floor(target_far * desc.size)) + 1)
    ends = _tail_ends(desc[:k])
    # Accepting the top j+1 scores means a threshold at desc[j]; only ends of tie runs are real thresholds.
    reps = np.empty((params.n_boot, ends.size))
    pa, pb = people[order, 0], people[order, 1]
    for b, counts in enumerate(_draws(n_ids, params.n_boot, params.seed)):
        w_all = counts[people[:, 0]] * counts[people[:, 1]]
        total = w_all.sum()
        w_top = counts[pa[:k]] * counts[pb[:k]]
        reps[b] = np.cumsum(w_top)[ends] / total if total > 0 else np.nan
    upper = _upper(reps, params.confidence)
    ok = np.nonzero(upper <= target_far)[0]
    if ok.size == 0:
        t = float(np.nextafter(desc[0], np.inf))
        return t, 0.0, (0.0, 0.0)
    j = int(ok[-1])
    t = float(desc[ends[j]])
    far = float(np.count_nonzero(impostor >= t) / impostor.size)
    return t, far, _interval(reps[:, j], params.confidence)


def reject_threshold(
    genuine: FloatArray, people: IntArray, n_ids: int, miss_bound: float, params: RuleParams
) -> tuple[float, float, tuple[float, float]]:
    """Highest threshold whose identity-bootstrap miss-rate upper bound is at most miss_bound: (t, miss, interval).

    A genuine pair below the threshold is a miss. people holds each genuine pair's person.
    """
    order = np.argsort(genuine, kind="stable")
    asc = genuine[order]
    k = min(asc.size, int(math.floor(miss_bound * asc.size)) + 1)
    ends = _tail_ends(asc[:k])
    # A threshold just above asc[j] rejects the first j+1 scores.
    reps = np.empty((params.n_boot, ends.size))
    person = people[order]
    for b, counts in enumerate(_draws(n_ids, params.n_boot, params.seed + 1)):
        total = counts[people].sum()
        reps[b] = np.cumsum(counts[person[:k]])[ends] / total if total > 0 else np.nan
    upper = _upper(reps, params.confidence)
    ok = np.nonzero(upper <= miss_bound)[0]
    if ok.size == 0:
        t = float(asc[0])
        return t, 0.0, (0.0, 0.0)
    j = int(ok[-1])
    t = float(np.nextafter(asc[ends[j]], np.inf))
    miss = float(np.count_nonzero(genuine < t) / genuine.size)
    return t, miss, _interval(reps[:, j], params.confidence)


def fit_llr(scores: FloatArray, same: npt.NDArray[np.bool_], ridge: float = 1e-9) -> tuple[float, float]:
    """Prior-free logistic calibration: (slope, intercept) of log10 LR = slope * s + intercept, slope > 0.

    Each class carries half the weight, so the fitted log-odds are the log likelihood ratio itself.

    >>> s = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1, 0.6, 0.4])
    >>> slope, icpt = fit_llr(s, np.array([1, 1, 1, 0, 0, 0, 0, 1], dtype=bool))
    >>> bool(slope > 0), round(-icpt / slope, 3)
    (True, 0.5)
    """
    y = same.astype(np.float64)
    n_g, n_i = int(y.sum()), int(y.size - y.sum())
    if n_g == 0 or n_i == 0:
        raise CalibrationError(f"a likelihood ratio needs genuine and impostor pairs, got {n_g} and {n_i}")
    w = np.where(same, 0.5 / n_g, 0.5 / n_i)
    x = np.stack([scores, np.ones_like(scores)], axis=1)
    beta = np.zeros(2)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        grad = x.T @ (w * (p - y)) + ridge * beta
        hess = (x * (w * p * (1 - p))[:, None]).T @ x + ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    slope, intercept = float(beta[0]) / LN10, float(beta[1]) / LN10
    if slope <= 0:
        raise CalibrationError(f"scores do not rise with sameness (LLR slope {slope:.3g}); cannot calibrate an LR")
    return slope, intercept


def cllr(log10_lr_genuine: npt.ArrayLike, log10_lr_impostor: npt.ArrayLike) -> float:
    """Log-likelihood-ratio cost: 0 for a perfect LR, 1 for LR = 1 everywhere.

    >>> cllr([0.0], [0.0])
    1.0
    >>> round(cllr([math.log10(9)], [-math.log10(9)]), 6)
    0.152003
    """
    lg = np.asarray(log10_lr_genuine, dtype=np.float64) * LN10
    li = np.asarray(log10_lr_impostor, dtype=np.float64) * LN10
    cost_g = np.logaddexp(0.0, -lg) / math.log(2.0)
    cost_i = np.logaddexp(0.0, li) / math.log(2.0)
    return float(0.5 * (cost_g.mean() + cost_i.mean()))


def identities_needed(n_ids: int, n_gen: int, n_imp: int, params: RuleParams) -> int:
    """People a sample like this one would need to resolve the targets (impostor pairs grow as people squared)."""
    need_imp = params.min_pairs_factor / params.target_far
    need_gen = params.min_pairs_factor / params.miss_bound
    factor = max(
        math.sqrt(need_imp / max(n_imp, 1)),
        need_gen / max(n_gen, 1),
        params.min_identities / max(n_ids, 1),
        1.0,
    )
    return int(math.ceil(max(n_ids, 1) * factor))


def is_resolvable(n_ids: int, n_gen: int, n_imp: int, params: RuleParams) -> bool:
    """Enough pairs and people to place both thresholds."""
    return (
        n_imp >= params.min_pairs_factor / params.target_far
        and n_gen >= params.min_pairs_factor / params.miss_bound
        and n_ids >= params.min_identities
    )


def fit_band(
    sample: LabelledScores, params: RuleParams, name: str, low: float | None, high: float | None
) -> BandRecord:
    """Both thresholds, their rates and the LLR of one band of pairs."""
    gen_mask, imp_mask = sample.same, ~sample.same
    gen, imp = sample.scores[gen_mask], sample.scores[imp_mask]
    used = np.unique(sample.people)
    n_ids = int(used.size)
    # Renumber the people of this band so the bootstrap draws only them.
    people = np.searchsorted(used, sample.people)
    resolved = is_resolvable(n_ids, int(gen.size), int(imp.size), params)
    if gen.size == 0 or imp.size == 0:
        raise CalibrationError(f"band {name!r} has {gen.size} genuine and {imp.size} impostor pairs; it needs both")
    t_acc, far, far_iv = accept_threshold(imp, people[imp_mask], n_ids, params.target_far, params)
    t_rej, miss, miss_iv = reject_threshold(gen, people[gen_mask, 0], n_ids, params.miss_bound, params)
    slope, intercept = fit_llr(sample.scores, sample.same)
    return BandRecord(
        name=name,
        quality_low=low,
        quality_high=high,
        resolved=resolved,
        accept_threshold=t_acc,
        reject_threshold=t_rej,
        target_far=params.target_far,
        far=far,
        far_interval=far_iv,
        frr=float(np.count_nonzero(gen < t_acc) / gen.size),
        miss_bound=params.miss_bound,
        miss_rate=miss,
        miss_interval=miss_iv,
        n_genuine=int(gen.size),
        n_impostor=int(imp.size),
        n_identities=n_ids,
        llr_slope=slope,
        llr_intercept=intercept,
        identities_needed=None if resolved else identities_needed(n_ids, int(gen.size), int(imp.size), params),
    )


def band_edges(quality_genuine: FloatArray, n_bands: int) -> list[float]:
    """Interior quality edges that split the genuine pairs into n_bands equal parts."""
    if n_bands < 2:
        return []
    qs = np.quantile(quality_genuine, np.linspace(0, 1, n_bands + 1)[1:-1])
    return sorted({float(q) for q in qs})


def fit_decision(name: str, sample: LabelledScores, params: RuleParams) -> DecisionRecord:
    """The overall band, the quality bands, and the Cllr of both LLRs on the sample.

    Raises:
        CalibrationError: when even the overall band cannot resolve the targets (the message names how many
            people it would take).
    """
    n_ids = int(np.unique(sample.people).size)
    n_gen, n_imp = int(sample.same.sum()), int((~sample.same).sum())
    if not is_resolvable(n_ids, n_gen, n_imp, params):
        needed = identities_needed(n_ids, n_gen, n_imp, params)
        raise CalibrationError(
            f"{n_ids} people ({n_gen} genuine, {n_imp} impostor pairs) cannot resolve FAR {params.target_far:g} "
            f"and miss bound {params.miss_bound:g}: about {needed} people are needed",
            {"identities": n_ids, "identities_needed": needed, "n_genuine": n_gen, "n_impostor": n_imp},
        )
    overall = fit_band(sample, params, "all", None, None)
    edges = band_edges(sample.quality[sample.same], params.n_bands)
    lows: list[float | None] = [None, *edges]
    highs: list[float | None] = [*edges, None]
    bands = []
    for i, (lo, hi) in enumerate(zip(lows, highs, strict=True)):
        mask = np.ones(sample.scores.size, dtype=bool)
        if lo is not None:
            mask &= sample.quality >= lo
        if hi is not None:
            mask &= sample.quality < hi
        bands.append(fit_band(sample.subset(mask), params, f"q{i + 1}", lo, hi))
    record = DecisionRecord(
        name=name,
        target_far=params.target_far,
        miss_bound=params.miss_bound,
        confidence=params.confidence,
        min_pairs_factor=params.min_pairs_factor,
        min_identities=params.min_identities,
        n_boot=params.n_boot,
        overall=overall,
        bands=bands,
        cllr=0.0,
        cllr_overall=0.0,
    )
    banded = banded_log10_lr(record, sample.scores, sample.quality)
    plain = overall.llr_slope * sample.scores + overall.llr_intercept
    return record.model_copy(
        update={
            "cllr": cllr(banded[sample.same], banded[~sample.same]),
            "cllr_overall": cllr(plain[sample.same], plain[~sample.same]),
        }
    )


def band_indices(record: DecisionRecord, quality: FloatArray) -> IntArray:
    """Index into record.bands of each pair's band, or -1 where the overall band decides."""
    if not record.bands:
        return np.full(np.shape(quality), -1, dtype=np.int64)
    lows = np.array([-np.inf if b.quality_low is None else b.quality_low for b in record.bands])
    idx = np.searchsorted(lows, quality, side="right") - 1
    resolved = np.array([b.resolved for b in record.bands])
    out: IntArray = np.where((idx >= 0) & resolved[np.clip(idx, 0, None)], idx, -1).astype(np.int64)
    return out


def _per_band(record: DecisionRecord, quality: FloatArray, field: str) -> FloatArray:
    values = np.array([getattr(b, field) for b in (*record.bands, record.overall)], dtype=np.float64)
    out: FloatArray = values[band_indices(record, quality)]
    return out


def banded_log10_lr(record: DecisionRecord, scores: FloatArray, quality: FloatArray) -> FloatArray:
    """log10 LR of every pair with its own band's calibration."""
    out: FloatArray = _per_band(record, quality, "llr_slope") * scores + _per_band(record, quality, "llr_intercept")
    return out


def decide_many(record: DecisionRecord, scores: FloatArray, quality: FloatArray) -> npt.NDArray[np.str_]:
    """The three-way outcome of many pairs at once, by the same rule as facecore.decision.decide."""
    accept = _per_band(record, quality, "accept_threshold")
    reject = np.minimum(_per_band(record, quality, "reject_threshold"), accept)
    out: npt.NDArray[np.str_] = np.where(
        scores >= accept, "match", np.where(scores < reject, "non_match", "uncertain")
    ).astype(np.str_)
    return out


def all_pairs(
    mu: FloatArray, kappa: FloatArray, person: IntArray, source: npt.NDArray[np.generic] | None = None
) -> LabelledScores:
    """Every pair among labelled faces (unit directions mu, certainties kappa, person index of each face).

    With ``source`` (one label per face: the collection or camera it came from), an impostor pair whose faces
    come from two sources is left out. Photos of one source share lighting, resolution and processing, so two
    strangers from different sources score lower than two from the same one; counting those easy pairs would
    thin the impostor tail and put the accept threshold below what a single gallery needs.

    >>> mu = np.eye(3)[[0, 0, 1]]
    >>> s = all_pairs(mu, np.array([5.0, 7.0, 9.0]), np.array([0, 0, 1]))
    >>> s.scores.tolist(), s.same.tolist(), s.quality.tolist()
    ([1.0, 0.0, 0.0], [True, False, False], [5.0, 5.0, 7.0])
    >>> all_pairs(mu, np.array([5.0, 7.0, 9.0]), np.array([0, 0, 1]), np.array(["a", "a", "b"])).same.tolist()
    [True]
    """
    iu = np.triu_indices(person.size, k=1)
    same = person[iu[0]] == person[iu[1]]
    keep = np.ones(same.size, dtype=bool) if source is None else same | (source[iu[0]] == source[iu[1]])
    first, second = iu[0][keep], iu[1][keep]
    return LabelledScores(
        scores=np.einsum("ij,ij->i", mu[first], mu[second]),
        same=same[keep],
        quality=np.minimum(kappa[first], kappa[second]),
        people=np.stack([person[first], person[second]], axis=1).astype(np.int64),
    )
