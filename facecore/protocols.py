"""Verification protocols on labelled pair scores: the LFW-style k-fold accuracy (docs/training.md, "Evaluate").

For each fold, the threshold that maximises accuracy on the other folds is applied to the held-out
fold; the result is the mean and standard deviation of the held-out accuracies. Two systems judged on the
same pairs are compared by McNemar's exact test on the pairs only one of them gets wrong.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from facecore.calibration import as_scores
from facecore.errors import CalibrationError

FloatArray = npt.NDArray[np.float64]


class KFoldResult(BaseModel):
    """Held-out accuracy per fold and the threshold each fold used."""

    model_config = ConfigDict(frozen=True)

    mean: float
    std: float
    fold_accuracies: list[float]
    thresholds: list[float]


def best_accuracy_threshold(scores: npt.ArrayLike, same: npt.ArrayLike) -> tuple[float, float]:
    """Threshold (accept when score >= t) maximising accuracy on these pairs, and that accuracy.

    Candidates are -inf and the midpoints between consecutive distinct scores and +inf; among equally
    accurate candidates the middle one is taken, so the choice does not hug one class.

    >>> best_accuracy_threshold([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])
    (0.5, 1.0)
    """
    s = as_scores(scores, "scores")
    y = _as_labels(same, s.size)
    order = np.argsort(s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    unique, first = np.unique(s_sorted, return_index=True)
    # With t just below unique[j], the pairs before first[j] are rejected, the rest accepted.
    n_pos_below = np.concatenate([[0], np.cumsum(y_sorted)])[first]
    n_neg_below = first - n_pos_below
    n_pos = int(y.sum())
    correct = np.concatenate([n_neg_below + (n_pos - n_pos_below), [s.size - n_pos]])
    cand = np.concatenate([[-np.inf], 0.5 * (unique[1:] + unique[:-1]), [np.inf]])
    best = np.flatnonzero(correct == correct.max())
    j = int(best[best.size // 2])
    return float(cand[j]), float(correct[j] / s.size)


def kfold_accuracy(scores: npt.ArrayLike, same: npt.ArrayLike, folds: npt.ArrayLike) -> KFoldResult:
    """k-fold verification accuracy with the threshold chosen on the other folds.

    Args:
        scores: similarity of each pair (n,).
        same: 1 for a genuine pair, 0 for an impostor pair (n,).
        folds: fold label of each pair (n,), e.g. LFW's 10 identity-disjoint folds.
    """
    s = as_scores(scores, "scores")
    y = _as_labels(same, s.size)
    f = np.asarray(folds).ravel()
    if f.size != s.size:
        raise CalibrationError(f"folds must label all {s.size} pairs, got {f.size} labels")
    labels = np.unique(f)
    if labels.size < 2:
        raise CalibrationError(f"k-fold accuracy needs at least 2 folds, got {labels.size}")
    accs, thresholds = [], []
    for fold in labels:
        test = f == fold
        t, _ = best_accuracy_threshold(s[~test], y[~test])
        accs.append(float(np.mean((s[test] >= t) == (y[test] == 1))))
        thresholds.append(t)
    return KFoldResult(mean=float(np.mean(accs)), std=float(np.std(accs)), fold_accuracies=accs, thresholds=thresholds)


def held_out_errors(
    scores: npt.ArrayLike, same: npt.ArrayLike, folds: npt.ArrayLike
) -> tuple[KFoldResult, npt.NDArray[np.bool_]]:
    """k-fold accuracy and, per pair, whether the threshold its fold chose on the other folds gets it wrong.

    >>> result, wrong = held_out_errors([0.1, 0.9, 0.2, 0.8, 0.7, 0.3], [0, 1, 0, 1, 0, 1], [0, 0, 1, 1, 2, 2])
    >>> wrong.tolist()
    [False, False, False, False, True, True]
    """
    s = as_scores(scores, "scores")
    y = _as_labels(same, s.size)
    result = kfold_accuracy(s, y, folds)
    f = np.asarray(folds).ravel()
    thresholds = np.asarray(result.thresholds)[np.searchsorted(np.unique(f), f)]
    return result, (s >= thresholds) != (y == 1)


class PairedComparison(BaseModel):
    """Two systems' errors on the same pairs: how many only A or only B got wrong, and McNemar's exact p."""

    model_config = ConfigDict(frozen=True)

    only_a_wrong: int
    only_b_wrong: int
    p_value: float


def mcnemar_exact(errors_a: npt.ArrayLike, errors_b: npt.ArrayLike) -> PairedComparison:
    """Two-sided exact McNemar test: are A's and B's error rates on these pairs different?

    Pairs both get right or both get wrong say nothing about which is better; under the null each discordant
    pair is A's error or B's with probability 1/2, so p is twice the binomial tail of the smaller count.

    >>> mcnemar_exact([1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]).p_value
    0.109375
    """
    a = np.asarray(errors_a, dtype=bool).ravel()
    b = np.asarray(errors_b, dtype=bool).ravel()
    if a.size != b.size:
        raise CalibrationError(f"both systems must be judged on the same pairs, got {a.size} and {b.size} errors")
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(b & ~a))
    n = only_a + only_b
    tail = sum(math.comb(n, k) for k in range(min(only_a, only_b) + 1)) / 2.0**n
    return PairedComparison(only_a_wrong=only_a, only_b_wrong=only_b, p_value=min(1.0, 2.0 * tail))


def assign_folds(n_pairs: int, n_folds: int) -> npt.NDArray[np.int64]:
    """Contiguous fold labels 0..n_folds-1 for pair lists that carry none (LFW orders pairs by fold)."""
    if not 2 <= n_folds <= n_pairs:
        raise CalibrationError(f"n_folds must be in [2, {n_pairs}], got {n_folds}")
    return (np.arange(n_pairs) * n_folds // n_pairs).astype(np.int64)


def stratified_folds(same: npt.ArrayLike, n_folds: int) -> npt.NDArray[np.int64]:
    """Fold labels dealing each class's pairs round-robin, so every fold holds both classes in proportion.

    >>> stratified_folds([1, 1, 1, 1, 0, 0, 0, 0], 2).tolist()
    [0, 1, 0, 1, 0, 1, 0, 1]
    """
    y = np.asarray(same).ravel()
    if not 2 <= n_folds <= y.size:
        raise CalibrationError(f"n_folds must be in [2, {y.size}], got {n_folds}")
    out = np.empty(y.size, dtype=np.int64)
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        out[idx] = np.arange(idx.size) % n_folds
    return out


def _as_labels(same: npt.ArrayLike, n: int) -> npt.NDArray[np.int64]:
    y = np.asarray(same).ravel()
    if y.size != n:
        raise CalibrationError(f"labels must cover all {n} pairs, got {y.size}")
    if not np.all((y == 0) | (y == 1)):
        raise CalibrationError("labels must be 0 (different people) or 1 (same person)")
    return y.astype(np.int64)
