"""facecore calibration math against scikit-learn, brute force and known Gaussian cases."""

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from facecore.calibration import (
    bayes_threshold,
    equal_error_rate,
    error_rate_curve,
    far_at,
    frr_at,
    gaussian_eer,
    operating_point,
    roc_auc,
    roc_curve,
    tar_at_far,
    threshold_at_far,
)
from facecore.decidability import d_prime, d_prime_interval, far_identity_interval, score_stats
from facecore.errors import CalibrationError


def sample_scores(rng: np.random.Generator, n_gen: int, n_imp: int, ties: bool = False) -> tuple:
    gen = rng.normal(0.6, 0.12, n_gen)
    imp = rng.normal(0.1, 0.15, n_imp)
    if ties:
        gen, imp = np.round(gen, 2), np.round(imp, 2)
    return gen, imp


def sklearn_eer(gen: np.ndarray, imp: np.ndarray) -> float:
    y = np.r_[np.ones_like(gen), np.zeros_like(imp)]
    fpr, tpr, _ = sk_roc_curve(y, np.r_[gen, imp], drop_intermediate=False)
    fpr, fnr = fpr[::-1], 1 - tpr[::-1]  # ascending thresholds, as in our sweep
    k = int(np.argmax(fnr - fpr >= 0))
    g0, g1 = fnr[k - 1] - fpr[k - 1], fnr[k] - fpr[k]
    a = -g0 / (g1 - g0) if g1 != g0 else 0.0
    return 0.5 * ((fpr[k - 1] + a * (fpr[k] - fpr[k - 1])) + (fnr[k - 1] + a * (fnr[k] - fnr[k - 1])))


@pytest.mark.parametrize("ties", [False, True])
def test_roc_matches_sklearn(ties: bool) -> None:
    gen, imp = sample_scores(np.random.default_rng(1), 300, 900, ties)
    fpr, tpr, thr = roc_curve(gen, imp)
    y = np.r_[np.ones_like(gen), np.zeros_like(imp)]
    sk_fpr, sk_tpr, sk_thr = sk_roc_curve(y, np.r_[gen, imp], drop_intermediate=False)
    # sklearn starts at +inf and stops at the lowest score; we add a final -inf point (1, 1).
    assert np.allclose(fpr[:-1], sk_fpr) and np.allclose(tpr[:-1], sk_tpr)
    assert np.allclose(thr[1:-1], sk_thr[1:])
    assert roc_auc(gen, imp) == pytest.approx(roc_auc_score(y, np.r_[gen, imp]), abs=1e-12)


@pytest.mark.parametrize(("seed", "ties"), [(0, False), (1, True), (2, False)])
def test_eer_matches_sklearn_interpolation(seed: int, ties: bool) -> None:
    gen, imp = sample_scores(np.random.default_rng(seed), 400, 1200, ties)
    assert equal_error_rate(gen, imp).eer == pytest.approx(sklearn_eer(gen, imp), abs=1e-12)


def test_eer_edge_cases() -> None:
    assert equal_error_rate([0.9, 0.8], [0.1, 0.2]).eer == 0.0
    same = np.random.default_rng(3).normal(size=200_000)
    assert equal_error_rate(same[:100_000], same[100_000:]).eer == pytest.approx(0.5, abs=5e-3)


def test_eer_gaussian_reference_and_empirical() -> None:
    ref = gaussian_eer(0.7, 0.1, 0.1, 0.15)
    assert ref.threshold == pytest.approx(0.46, abs=1e-12)
    assert ref.eer == pytest.approx(0.0081975, abs=1e-7)
    rng = np.random.default_rng(4)
    emp = equal_error_rate(rng.normal(0.7, 0.1, 1_000_000), rng.normal(0.1, 0.15, 1_000_000))
    assert emp.eer == pytest.approx(ref.eer, abs=5e-4)
    assert emp.threshold == pytest.approx(0.46, abs=5e-3)


def test_error_rate_curve_matches_brute_force() -> None:
    gen, imp = sample_scores(np.random.default_rng(5), 50, 80, ties=True)
    curve = error_rate_curve(gen, imp)
    for t, far, frr in zip(curve.thresholds, curve.far, curve.frr, strict=True):
        assert far == np.mean(imp >= t) and frr == np.mean(gen < t)


def test_threshold_at_far_reference_values() -> None:
    imp = [0.1, 0.2, 0.3, 0.4, 0.5]
    t = threshold_at_far(imp, 0.2)
    assert 0.4 < t <= np.nextafter(0.4, 1) and far_at(imp, t) == 0.2
    t = threshold_at_far(imp, 0.1 + 0.1)  # 0.2 written as a sum of floats still means k = 1
    assert far_at(imp, t) == 0.2
    with pytest.raises(CalibrationError, match="needs at least 10 impostor pairs"):
        threshold_at_far(imp, 0.1)
    imp10 = [0.1, 0.2, 0.3, 0.4, 0.5, 0.05, 0.04, 0.03, 0.02, 0.01]
    t = threshold_at_far(imp10, 0.1)
    assert t > 0.5 or far_at(imp10, t) <= 0.1
    tied = [0.5] * 4
    assert far_at(tied, threshold_at_far(tied, 0.5)) == 0.0


@pytest.mark.parametrize("target", [0.5, 0.1, 0.03, 0.01, 0.002])
def test_threshold_at_far_is_the_smallest_safe_threshold(target: float) -> None:
    _, imp = sample_scores(np.random.default_rng(6), 10, 1000, ties=True)
    t = threshold_at_far(imp, target)
    assert far_at(imp, t) <= target
    # Brute force: no smaller candidate threshold (distinct scores) keeps FAR <= target.
    smaller = np.unique(imp)[np.unique(imp) < t]
    assert all(far_at(imp, c) > target for c in smaller)


def test_unresolvable_far_is_refused_with_the_needed_count() -> None:
    gen, imp = sample_scores(np.random.default_rng(7), 300, 3000)
    expected = "target FAR 0.0001 needs at least 10000 impostor pairs to be resolved, got 3000"
    with pytest.raises(CalibrationError, match=expected):
        tar_at_far(gen, imp, [1e-4])
    points = tar_at_far(gen, imp, [1e-2, 1e-3, 1e-4], skip_unresolvable=True)
    assert [p.target_far for p in points] == [1e-2, 1e-3]
    for p in points:
        assert p.far <= p.target_far and p.tar == 1 - frr_at(gen, p.threshold)
    with pytest.raises(CalibrationError, match=r"target FAR must be in \(0, 1\]"):
        operating_point(gen, imp, 0.0)


def test_d_prime_toy_affine_invariance_and_sign() -> None:
    c = math.cos(math.radians(30))
    assert d_prime([c, c], [0.0, -0.5, 0.5, 0.0]) == pytest.approx(3.0, abs=1e-12)
    gen, imp = sample_scores(np.random.default_rng(8), 200, 500)
    base = d_prime(gen, imp)
    for a, b in [(2.0, 1.0), (0.01, -3.0), (100.0, 7.0)]:
        assert d_prime(a * gen + b, a * imp + b) == pytest.approx(base, abs=1e-12)
    assert d_prime(-gen, -imp) == pytest.approx(-base, abs=1e-12)
    with pytest.raises(CalibrationError, match="genuine needs at least 2"):
        d_prime([0.5], [0.1, 0.2])


def test_d_prime_interval_covers_and_identity_bootstrap_is_wider() -> None:
    rng = np.random.default_rng(9)
    # Identity effects shared by all of an identity's pairs make pairs dependent.
    n_ids = 40
    effect = rng.normal(0, 0.15, n_ids)
    g_ids = rng.integers(0, n_ids, 400)
    gen = 0.6 + effect[g_ids] + rng.normal(0, 0.05, 400)
    i_ids = rng.integers(0, n_ids, (1200, 2))
    imp = 0.1 + 0.5 * (effect[i_ids[:, 0]] + effect[i_ids[:, 1]]) + rng.normal(0, 0.05, 1200)
    pairs = d_prime_interval(gen, imp, n_boot=300, seed=1)
    ids = d_prime_interval(gen, imp, n_boot=300, seed=1, genuine_ids=g_ids, impostor_ids=i_ids)
    assert pairs.method == "pairs" and ids.method == "identities"
    for ci in (pairs, ids):
        assert ci.low < ci.value < ci.high
    assert (ids.high - ids.low) > 1.5 * (pairs.high - pairs.low)
    stats = score_stats(gen, "genuine")
    assert stats.count == 400 and stats.std == pytest.approx(np.std(gen, ddof=1))


def test_far_identity_interval_widens_when_false_accepts_share_a_person() -> None:
    rng = np.random.default_rng(4)
    people = np.array([f"p{i}" for i in range(60)])
    iu = np.triu_indices(60, 1)
    ids = np.stack([people[iu[0]], people[iu[1]]], axis=1)  # every impostor pair among 60 people: 1,770
    scores = rng.normal(size=len(ids))
    spread = scores >= np.sort(scores)[-59]  # 59 false accepts (FAR 1/30) spread over everyone
    low, high = far_identity_interval(np.where(spread, 1.0, 0.0), ids, 0.5, n_boot=400)
    assert low < 1 / 30 < high and high - low < 0.035
    # As many false accepts, all involving one look-alike person: whether that person is drawn decides the
    # FAR, so the interval is several times wider and reaches zero.
    lookalike = (ids == "p0").any(axis=1)  # p0's 59 pairs
    lk_low, lk_high = far_identity_interval(np.where(lookalike, 1.0, 0.0), ids, 0.5, n_boot=400)
    assert lk_low == 0.0 and lk_high - lk_low > 3 * (high - low)
    with pytest.raises(CalibrationError, match=r"impostor_ids must have shape \(1770, 2\)"):
        far_identity_interval(scores, ids[:10], 0.5)


def test_bayes_threshold_references_and_cost_direction() -> None:
    assert bayes_threshold(0.7, 0.1, 0.1, 0.15) == pytest.approx(0.449934, abs=1e-6)
    assert bayes_threshold(0.7, 0.1, 0.1, 0.1) == pytest.approx(0.4, abs=1e-12)
    ts = [bayes_threshold(0.7, 0.1, 0.1, 0.15, cost_false_accept=c) for c in (1, 10, 100)]
    assert ts[0] < ts[1] < ts[2]
    # The threshold is where the two weighted Gaussian densities meet.
    from scipy.stats import norm

    t = ts[1]
    assert 10 * norm.pdf(t, 0.1, 0.15) == pytest.approx(norm.pdf(t, 0.7, 0.1), rel=1e-9)
    with pytest.raises(CalibrationError, match="must exceed impostor mean"):
        bayes_threshold(0.1, 0.1, 0.7, 0.1)
