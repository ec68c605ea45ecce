"""The three-way rule and its fit: thresholds that hold under an identity bootstrap, LLR against scikit-learn,
Cllr reference values, the promises each answer makes, and the exact FPIR against simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facecore.decidability import far_identity_interval
from facecore.decision import decide, decide_search
from facecore.decision_fit import (
    DecisionSettings,
    LabelledScores,
    accept_threshold,
    all_pairs,
    banded_log10_lr,
    cllr,
    decide_many,
    fit_decision,
    fit_llr,
    reject_threshold,
)
from facecore.errors import CalibrationError
from facecore.identification import ProbeTable, fit_identification, independent_fpir


def synthetic_gallery(n_people: int, per_person: int, dim: int = 16, seed: int = 0) -> LabelledScores:
    """Faces around one random centre per person, with kappa that makes a face noisier when low."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, dim))
    person = np.repeat(np.arange(n_people), per_person)
    kappa = rng.uniform(5, 40, person.size)
    x = centres[person] + rng.normal(size=(person.size, dim)) * (4.0 / np.sqrt(kappa))[:, None]
    mu = x / np.linalg.norm(x, axis=1, keepdims=True)
    return all_pairs(mu, kappa, person)


def test_accept_threshold_is_the_lowest_whose_identity_interval_holds() -> None:
    rng = np.random.default_rng(3)
    imp = np.round(rng.normal(0, 0.1, 30000), 3)  # rounded: ties must be handled
    people = rng.integers(0, 150, (30000, 2))
    params = DecisionSettings(miss_bound=0.02).params(0.01, n_boot=60)
    t, far, (lo, hi) = accept_threshold(imp, people, 150, 0.01, params)
    # The same draws through facecore.decidability's independent implementation of the identity bootstrap.
    assert far_identity_interval(imp, people, t, n_boot=60, seed=0)[1] <= 0.01
    assert far == pytest.approx(np.mean(imp >= t)) and lo <= far <= hi <= 0.01
    lower = imp[imp < t].max()
    assert far_identity_interval(imp, people, lower, n_boot=60, seed=0)[1] > 0.01


def test_reject_threshold_holds_its_miss_bound_by_a_plain_bootstrap() -> None:
    rng = np.random.default_rng(4)
    gen = rng.normal(0.7, 0.1, 5000)
    person = rng.integers(0, 200, 5000)
    params = DecisionSettings(miss_bound=0.02).params(1e-3, n_boot=80, seed=5)
    t, miss, (_, hi) = reject_threshold(gen, person, 200, 0.02, params)
    assert miss == pytest.approx(np.mean(gen < t)) and hi <= 0.02

    def upper(threshold: float) -> float:
        draws = np.random.default_rng(params.seed + 1)
        reps = []
        for _ in range(params.n_boot):
            counts = draws.multinomial(200, np.full(200, 1 / 200)).astype(float)
            reps.append(counts[person] @ (gen < threshold) / counts[person].sum())
        return float(np.quantile(reps, 0.975))

    assert upper(t) <= 0.02
    assert upper(float(np.nextafter(gen[gen >= t].min(), np.inf))) > 0.02


def test_llr_matches_balanced_logistic_regression() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    s = np.concatenate([rng.normal(0.6, 0.15, 400), rng.normal(0.1, 0.1, 4000)])
    y = np.concatenate([np.ones(400, bool), np.zeros(4000, bool)])
    slope, intercept = fit_llr(s, y)
    ref = LogisticRegression(C=np.inf, class_weight="balanced", tol=1e-10, max_iter=10_000).fit(s[:, None], y)
    assert slope == pytest.approx(ref.coef_[0, 0] / math.log(10), rel=1e-4)
    assert intercept == pytest.approx(ref.intercept_[0] / math.log(10), rel=1e-4)


def test_llr_refuses_scores_that_fall_with_sameness() -> None:
    with pytest.raises(CalibrationError, match="do not rise with sameness"):
        fit_llr(np.array([0.1, 0.2, 0.8, 0.9]), np.array([True, True, False, False]))


def test_cllr_reference_values() -> None:
    assert cllr(np.zeros(5), np.zeros(7)) == pytest.approx(1.0)
    assert cllr([math.log10(9)], [-math.log10(9)]) == pytest.approx(math.log2(10 / 9), abs=1e-12)
    assert cllr([6.0], [-6.0]) < 1e-5


@pytest.fixture(scope="module")
def fitted() -> tuple[LabelledScores, object]:
    sample = synthetic_gallery(120, 6)
    rule = fit_decision("far_1e-2", sample, DecisionSettings(miss_bound=0.05, n_bands=3).params(1e-2, n_boot=40))
    return sample, rule


def test_fit_records_bands_their_sizes_and_a_banded_cllr_no_worse(fitted) -> None:  # type: ignore[no-untyped-def]
    sample, rule = fitted
    assert [b.name for b in rule.bands] == ["q1", "q2", "q3"] and rule.bands[0].quality_low is None
    assert sum(b.n_genuine for b in rule.bands) == rule.overall.n_genuine == int(sample.same.sum())
    assert sum(b.n_impostor for b in rule.bands) == rule.overall.n_impostor
    assert rule.cllr <= rule.cllr_overall + 1e-9 < 1.0


def test_a_match_never_comes_from_a_band_whose_far_exceeds_the_target(fitted) -> None:  # type: ignore[no-untyped-def]
    sample, rule = fitted
    outcomes = decide_many(rule, sample.scores, sample.quality)
    for i in np.nonzero(outcomes == "match")[0][:500]:
        verdict = decide(float(sample.scores[i]), float(sample.quality[i]), rule)
        assert verdict.decision == "match" and verdict.band.resolved
        assert verdict.band.far <= rule.target_far and verdict.band.far_interval[1] <= rule.target_far


@given(st.floats(-1, 1), st.floats(1, 60))
@settings(max_examples=200, deadline=None)
def test_decide_many_is_decide_and_the_llr_rises_with_the_score(fitted, score: float, quality: float) -> None:  # type: ignore[no-untyped-def]
    _, rule = fitted
    verdict = decide(score, quality, rule)
    (many,) = decide_many(rule, np.array([score]), np.array([quality]))
    assert many == verdict.decision
    higher = decide(score + 0.01, quality, rule)
    assert higher.band == verdict.band and higher.log10_lr > verdict.log10_lr
    assert banded_log10_lr(rule, np.array([score]), np.array([quality]))[0] == pytest.approx(verdict.log10_lr)
    if verdict.decision == "uncertain":
        assert verdict.reason and verdict.reject <= score < verdict.accept
    else:
        assert verdict.reason is None


def test_a_rule_without_bands_decides_by_its_overall_band(fitted) -> None:  # type: ignore[no-untyped-def]
    sample, rule = fitted
    blind = rule.model_copy(update={"bands": []})
    outcomes = decide_many(blind, sample.scores, sample.quality)
    accept, reject = rule.overall.accept_threshold, min(rule.overall.reject_threshold, rule.overall.accept_threshold)
    expected = np.where(sample.scores >= accept, "match", np.where(sample.scores < reject, "non_match", "uncertain"))
    assert (outcomes == expected).all() and decide(0.3, 10.0, blind).band.name == "all"


def test_a_band_too_small_falls_back_to_the_overall_band() -> None:
    sample = synthetic_gallery(60, 5, seed=2)
    rule = fit_decision("r", sample, DecisionSettings(miss_bound=0.05, n_bands=8).params(1e-2, n_boot=20))
    small = [b for b in rule.bands if not b.resolved]
    assert small and all(b.identities_needed and b.identities_needed > b.n_identities for b in small)
    q = small[0].quality_low if small[0].quality_low is not None else 0.0
    assert decide(0.5, q, rule).band.name == "all"
    # The pair's own band is still the small one: responses report the fallback from it.
    assert rule.own_band(q) == small[0] and rule.model_copy(update={"bands": []}).own_band(q) is None


def test_an_unresolvable_sample_is_refused_with_the_people_it_needs() -> None:
    sample = synthetic_gallery(15, 3)
    with pytest.raises(CalibrationError, match="about .* people are needed") as err:
        fit_decision("r", sample, DecisionSettings(miss_bound=0.02).params(1e-3, n_boot=200))
    assert err.value.details["identities_needed"] > 15


def test_exact_fpir_matches_simulated_searches() -> None:
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(40), 3)
    sim = rng.normal(0, 0.2, (120, 120))
    sim = (sim + sim.T) / 2
    table = ProbeTable(sim, labels)
    t, n = 0.35, 10
    hits = []
    for p in range(120):
        others = np.nonzero(labels != labels[p])[0]
        for _ in range(300):
            hits.append(sim[p, rng.choice(others, n, replace=False)].max() >= t)
    assert table.fpir(t, n) == pytest.approx(np.mean(hits), abs=0.01)
    assert table.fpir(t, 1) == pytest.approx(np.mean([sim[p, labels != labels[p]] >= t for p in range(120)]))


def test_identification_thresholds_keep_the_fpir_and_rise_with_the_gallery() -> None:
    sample = synthetic_gallery(200, 6, seed=3)
    person = np.repeat(np.arange(200), 6)
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(200, 16))
    x = centres[person] + rng.normal(size=(1200, 16))
    mu = x / np.linalg.norm(x, axis=1, keepdims=True)
    record = fit_identification(mu @ mu.T, person, target_fpir=0.01)
    thresholds = [p.threshold for p in record.points]
    assert thresholds == sorted(thresholds) and all(p.fpir <= 0.01 for p in record.points)
    assert record.max_gallery_size >= 1000 and record.points[-1].gallery_size == record.max_gallery_size
    assert sample.scores.size > 0 and independent_fpir(1e-3, 1000) == pytest.approx(0.6323, abs=1e-4)
    point, resolved = record.point_for(record.max_gallery_size + 1)
    assert not resolved and point == record.points[-1]
    with pytest.raises(CalibrationError, match="needs at least 1000 calibration faces"):
        fit_identification(mu[:500] @ mu[:500].T, person[:500], target_fpir=0.01)


def test_search_outcomes(fitted) -> None:  # type: ignore[no-untyped-def]
    _, rule = fitted
    person = np.repeat(np.arange(200), 6)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 16))[person] + rng.normal(size=(1200, 16))
    mu = x / np.linalg.norm(x, axis=1, keepdims=True)
    ident = fit_identification(mu @ mu.T, person, target_fpir=0.01)
    top = ident.point_for(50)[0].threshold
    assert decide_search(None, 20.0, 0, rule, ident).result == "unknown"
    assert decide_search(top + 0.01, 20.0, 50, rule, ident).result == "match"
    assert decide_search(-0.9, 20.0, 50, rule, ident).result == "unknown"
    far_too_big = decide_search(0.0, 20.0, 10**9, rule, ident)
    assert not far_too_big.resolved and far_too_big.reason and "up to" in far_too_big.reason


def test_impostor_pairs_across_sources_are_left_out() -> None:
    """Two collections whose strangers look alike only within each: pooling their cross pairs hides that tail."""
    rng = np.random.default_rng(7)
    n_people, per, dim = 60, 3, 16
    person = np.repeat(np.arange(n_people), per)
    source = np.where(person < n_people // 2, "studio", "street")
    # Each source shares a strong common direction (its look), so its strangers score high against each other.
    look = {s: rng.normal(size=dim) * 3.0 for s in ("studio", "street")}
    x = (
        rng.normal(size=(n_people, dim))[person]
        + np.stack([look[s] for s in source])
        + rng.normal(size=(person.size, dim))
    )
    mu = x / np.linalg.norm(x, axis=1, keepdims=True)
    kappa = np.full(person.size, 20.0)
    pooled, within = all_pairs(mu, kappa, person), all_pairs(mu, kappa, person, source)
    assert within.same.sum() == pooled.same.sum() == n_people * 3
    n_within = 2 * (n_people // 2 * per) * (n_people // 2 * per - 1) // 2 - n_people * 3
    assert (~within.same).sum() == n_within
    # The pooled impostor tail is lower than the one a single collection shows: it would understate the FAR.
    assert np.quantile(within.scores[~within.same], 0.99) > np.quantile(pooled.scores[~pooled.same], 0.99)
    table = ProbeTable(mu @ mu.T, person, source)
    assert table.n_impostors.tolist() == [float(n_people // 2 * per - per)] * person.size
    assert table.fpir(0.0, 10) >= ProbeTable(mu @ mu.T, person).fpir(0.0, 10)
