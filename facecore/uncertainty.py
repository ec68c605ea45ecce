"""Does kappa predict errors? Risk-coverage curves, the kappa_min choice and kappa percentiles (docs/method.md).

A pair's certainty is the smaller kappa of its two faces (a decision is only as sure as its least sure
face). Rejecting the least certain pairs first should lower the error among the rest faster than rejecting
pairs at random, whose expected risk stays at the overall error rate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from facecore.errors import CalibrationError

FloatArray = npt.NDArray[np.float64]


class RiskCoverage(BaseModel):
    """Error among the kept pairs as the least certain are rejected, against random rejection."""

    model_config = ConfigDict(frozen=True)

    coverage: list[float]
    risk: list[float]
    random_risk: float
    aurc: float
    gain: float
    n_pairs: int


def pair_certainty(kappa_a: npt.ArrayLike, kappa_b: npt.ArrayLike) -> FloatArray:
    """min(kappa_a, kappa_b) per pair."""
    out: FloatArray = np.minimum(np.asarray(kappa_a, dtype=np.float64), np.asarray(kappa_b, dtype=np.float64))
    return out


def risk_coverage(
    errors: npt.ArrayLike,
    certainty: npt.ArrayLike,
    coverages: Sequence[float] = tuple(np.round(np.linspace(0.05, 1.0, 20), 2)),
) -> RiskCoverage:
    """Risk at each coverage when pairs are kept most-certain first; AURC and its gain over random rejection.

    gain = 1 - AURC / random_risk (0: kappa is no better than chance; 1: every error is rejected first).

    >>> rc = risk_coverage([1, 0, 0, 0], [0.1, 5, 6, 7], coverages=[0.5, 0.75, 1.0])
    >>> rc.risk, rc.random_risk
    ([0.0, 0.0, 0.25], 0.25)
    """
    err = np.asarray(errors, dtype=np.float64).ravel()
    cert = np.asarray(certainty, dtype=np.float64).ravel()
    if err.size == 0 or err.size != cert.size:
        raise CalibrationError(f"need matching non-empty errors and certainties, got {err.size} and {cert.size}")
    order = np.argsort(-cert, kind="stable")
    cert_sorted, err_sorted = cert[order], err[order]
    # Pairs of equal certainty are kept in no particular order: within a tie the expected number of errors
    # kept grows linearly, so a constant certainty gives exactly the random-rejection risk.
    ends = np.flatnonzero(np.append(cert_sorted[1:] != cert_sorted[:-1], True)) + 1
    starts = np.concatenate([[0], ends[:-1]])
    group_err = np.add.reduceat(err_sorted, starts)
    cum_before = np.concatenate([[0.0], np.cumsum(group_err)[:-1]])
    risks = []
    for c in coverages:
        if not 0 < c <= 1:
            raise CalibrationError(f"coverage must be in (0, 1], got {c}")
        k = max(1, int(np.ceil(c * err.size)))
        g = int(np.searchsorted(ends, k))  # the tie group holding the k-th kept pair
        taken = k - starts[g]
        expected = cum_before[g] + group_err[g] * taken / (ends[g] - starts[g])
        risks.append(float(expected / k))
    random_risk = float(err.mean())
    aurc = float(np.mean(risks))
    gain = 0.0 if random_risk == 0 else 1.0 - aurc / random_risk
    return RiskCoverage(
        coverage=[float(c) for c in coverages],
        risk=risks,
        random_risk=random_risk,
        aurc=aurc,
        gain=gain,
        n_pairs=int(err.size),
    )


def errors_removed(errors: npt.ArrayLike, certainty: npt.ArrayLike, reject_share: float = 0.1) -> float:
    """Share of the errors that rejecting the least certain ``reject_share`` of pairs takes away (ties shared).

    Random rejection takes away ``reject_share`` of them on average; a kappa that ranks errors takes more.

    >>> errors_removed([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], [0.1, 9, 2, 3, 4, 5, 6, 7, 8, 10])
    0.5
    """
    err = np.asarray(errors, dtype=np.float64).ravel()
    if err.sum() == 0:
        return float("nan")
    kept = 1.0 - reject_share
    rc = risk_coverage(err, certainty, coverages=[kept])
    n_kept = max(1, int(np.ceil(kept * err.size)))
    return float(1.0 - rc.risk[0] * n_kept / err.sum())


def kappa_min_for_budget(
    errors: npt.ArrayLike, certainty: npt.ArrayLike, budget: float, min_count: int = 20
) -> float | None:
    """The kappa below which decisions err more often than ``budget``.

    Over the pairs sorted by certainty, the tail below a candidate k is every pair whose certainty is lower;
    kappa_min is the largest k whose tail (of at least ``min_count`` pairs) has an error rate above budget,
    or None when no such tail exists.

    >>> kappa_min_for_budget([1, 1, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6], budget=0.4, min_count=2)
    5.0
    """
    err = np.asarray(errors, dtype=np.float64).ravel()
    cert = np.asarray(certainty, dtype=np.float64).ravel()
    if not 0 < budget < 1:
        raise CalibrationError(f"error budget must be in (0, 1), got {budget}")
    order = np.argsort(cert, kind="stable")
    cert_sorted = cert[order]
    tail_err = np.cumsum(err[order]) / np.arange(1, err.size + 1)
    best = None
    for i in range(min_count, err.size):
        # The tail strictly below cert_sorted[i]: the first i pairs (when there is no tie at the boundary).
        if cert_sorted[i] > cert_sorted[i - 1] and tail_err[i - 1] > budget:
            best = float(cert_sorted[i])
    return best


def kappa_percentiles(
    kappas: npt.ArrayLike, percentiles: Sequence[float] = (0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 100)
) -> list[tuple[float, float]]:
    """(percentile, kappa) pairs, for quality_pct look-ups."""
    k = np.asarray(kappas, dtype=np.float64).ravel()
    if k.size == 0:
        raise CalibrationError("no kappas to summarise")
    values = np.percentile(k, percentiles)
    return [(float(p), float(v)) for p, v in zip(percentiles, np.maximum.accumulate(values), strict=True)]
