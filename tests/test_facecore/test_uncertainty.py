"""Risk-coverage, kappa_min and kappa percentiles against brute force."""

import numpy as np
import pytest

from facecore.errors import CalibrationError
from facecore.uncertainty import kappa_min_for_budget, kappa_percentiles, pair_certainty, risk_coverage


def test_risk_coverage_matches_brute_force_without_ties() -> None:
    rng = np.random.default_rng(0)
    cert = rng.permutation(200).astype(float)
    err = rng.random(200) < 0.2
    rc = risk_coverage(err, cert, coverages=[0.1, 0.5, 1.0])
    for c, r in zip(rc.coverage, rc.risk, strict=True):
        kept = np.argsort(-cert)[: int(np.ceil(c * 200))]
        assert r == pytest.approx(err[kept].mean())
    assert rc.random_risk == pytest.approx(err.mean())


def test_ties_and_perfect_rankings() -> None:
    rng = np.random.default_rng(1)
    err = rng.random(500) < 0.15
    assert risk_coverage(err, np.full(500, 3.0)).gain == pytest.approx(0.0, abs=1e-12)  # no information
    perfect = risk_coverage(err, np.where(err, 0.0, 1.0))
    worst = risk_coverage(err, np.where(err, 1.0, 0.0))
    assert perfect.gain > 0.8 and worst.gain < 0
    with pytest.raises(CalibrationError, match="coverage must be in"):
        risk_coverage(err, np.ones(500), coverages=[0.0])


def test_kappa_min_is_where_the_tail_frr_exceeds_the_budget() -> None:
    rng = np.random.default_rng(2)
    cert = rng.uniform(0, 100, 2000)
    rejected = rng.random(2000) < np.where(cert < 30, 0.6, 0.05)  # low certainty: most genuine pairs rejected
    k = kappa_min_for_budget(rejected, cert, budget=0.3)
    assert k is not None and 30 < k < 80  # the tail below k mixes the bad region with good pairs
    below = cert < k
    assert rejected[below].mean() > 0.3
    assert kappa_min_for_budget(np.zeros(100, bool), np.arange(100.0), 0.3) is None


def test_percentiles_and_pair_certainty() -> None:
    pct = kappa_percentiles(np.arange(101.0), [0, 50, 100])
    assert pct == [(0.0, 0.0), (50.0, 50.0), (100.0, 100.0)]
    assert pair_certainty([1, 5], [3, 2]).tolist() == [1, 2]
    with pytest.raises(CalibrationError, match="no kappas"):
        kappa_percentiles([])
