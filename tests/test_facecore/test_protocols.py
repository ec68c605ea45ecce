"""k-fold verification accuracy against brute force."""

import numpy as np
import pytest

from facecore.errors import CalibrationError
from facecore.protocols import assign_folds, best_accuracy_threshold, kfold_accuracy


def brute_best(scores: np.ndarray, same: np.ndarray) -> float:
    cands = np.r_[-np.inf, np.unique(scores), np.inf]
    return max(np.mean((scores >= t) == (same == 1)) for t in cands)


def test_best_threshold_matches_brute_force_with_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        same = rng.integers(0, 2, 60)
        scores = np.round(rng.normal(0.3 + 0.3 * same, 0.2), 1)
        t, acc = best_accuracy_threshold(scores, same)
        assert acc == pytest.approx(brute_best(scores, same))
        assert np.mean((scores >= t) == (same == 1)) == pytest.approx(acc)


def test_kfold_uses_thresholds_from_other_folds() -> None:
    rng = np.random.default_rng(1)
    same = np.tile(np.r_[np.ones(30), np.zeros(30)], 10).astype(int)
    scores = rng.normal(0.2 + 0.5 * same, 0.15)
    folds = assign_folds(same.size, 10)
    res = kfold_accuracy(scores, same, folds)
    for k in range(10):
        test = folds == k
        t, _ = best_accuracy_threshold(scores[~test], same[~test])
        assert res.thresholds[k] == t
        assert res.fold_accuracies[k] == np.mean((scores[test] >= t) == (same[test] == 1))
    assert res.mean == pytest.approx(np.mean(res.fold_accuracies))
    assert 0.9 < res.mean <= 1.0


def test_kfold_errors() -> None:
    with pytest.raises(CalibrationError, match="at least 2 folds"):
        kfold_accuracy([0.1, 0.2], [0, 1], [0, 0])
    with pytest.raises(CalibrationError, match="labels must be 0"):
        kfold_accuracy([0.1, 0.2], [0, 2], [0, 1])


def test_mcnemar_exact_reference_values() -> None:
    from facecore.protocols import mcnemar_exact

    # 8 pairs only A misses, 2 only B misses: 2 * (C(10,0) + C(10,1) + C(10,2)) / 2**10 = 0.109375
    a = np.r_[np.ones(8), np.zeros(2), np.ones(5), np.zeros(30)]
    b = np.r_[np.zeros(8), np.ones(2), np.ones(5), np.zeros(30)]
    r = mcnemar_exact(a, b)
    assert (r.only_a_wrong, r.only_b_wrong) == (8, 2)
    assert r.p_value == pytest.approx(0.109375, abs=1e-12)
    assert mcnemar_exact(b, a).p_value == r.p_value  # symmetric
    assert mcnemar_exact(a, a).p_value == 1.0  # no discordant pair: no evidence either way
    # 10 vs 0: 2 / 2**10
    assert mcnemar_exact(np.ones(10), np.zeros(10)).p_value == pytest.approx(2 / 1024)
    with pytest.raises(CalibrationError, match="same pairs, got 3 and 2"):
        mcnemar_exact([1, 0, 1], [1, 0])
