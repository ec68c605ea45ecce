"""Error rates and thresholds from genuine/impostor score samples.

See docs/method.md#calibration-thresholds-that-hold-on-other-people for how they are used.

Scores are similarities: higher means "same person", and a pair is accepted when score >= t.
FAR(t) = #{impostor >= t} / n_impostor and FRR(t) = #{genuine < t} / n_genuine, computed exactly
by sweeping t over the unique scores plus +-inf.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict
from scipy.stats import norm

from facecore.errors import CalibrationError

FloatArray = npt.NDArray[np.float64]


class ErrorRateCurve(BaseModel):
    """FAR and FRR at every distinct threshold, thresholds ascending (first -inf, last +inf)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    thresholds: FloatArray
    far: FloatArray
    frr: FloatArray


class EerResult(BaseModel):
    """Equal error rate and the (interpolated) threshold where FAR and FRR cross."""

    model_config = ConfigDict(frozen=True)

    eer: float
    threshold: float


class OperatingPoint(BaseModel):
    """A threshold chosen for a target FAR, with the error rates it gives on the sample it was chosen on."""

    model_config = ConfigDict(frozen=True)

    target_far: float
    threshold: float
    far: float
    frr: float
    n_genuine: int
    n_impostor: int

    @property
    def tar(self) -> float:
        """True accept rate, 1 - FRR."""
        return 1.0 - self.frr


def as_scores(values: npt.ArrayLike, name: str, min_count: int = 1) -> FloatArray:
    """Validate a 1-D sample of finite scores, naming it in any error."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size < min_count:
        raise CalibrationError(f"{name} needs at least {min_count} score(s), got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise CalibrationError(f"{name} contains {int(np.sum(~np.isfinite(arr)))} non-finite score(s)")
    return arr


def far_at(impostor: npt.ArrayLike, threshold: float) -> float:
    """Fraction of impostor scores >= threshold."""
    imp = as_scores(impostor, "impostor")
    return float(np.count_nonzero(imp >= threshold) / imp.size)


def frr_at(genuine: npt.ArrayLike, threshold: float) -> float:
    """Fraction of genuine scores < threshold."""
    gen = as_scores(genuine, "genuine")
    return float(np.count_nonzero(gen < threshold) / gen.size)


def error_rate_curve(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> ErrorRateCurve:
    """FAR(t) and FRR(t) at t in {-inf} U unique scores U {+inf}, t ascending.

    >>> c = error_rate_curve([0.9, 0.8], [0.1, 0.85])
    >>> c.far.tolist(), c.frr.tolist()
    ([1.0, 1.0, 0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.5, 0.5, 1.0])
    """
    gen = np.sort(as_scores(genuine, "genuine"))
    imp = np.sort(as_scores(impostor, "impostor"))
    unique = np.unique(np.concatenate([gen, imp]))
    thresholds = np.concatenate([[-np.inf], unique, [np.inf]])
    # searchsorted(side="left") counts scores strictly below t.
    far = (imp.size - np.searchsorted(imp, thresholds, side="left")) / imp.size
    frr = np.searchsorted(gen, thresholds, side="left") / gen.size
    return ErrorRateCurve(thresholds=thresholds, far=far.astype(np.float64), frr=frr.astype(np.float64))


def roc_curve(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """ROC points (fpr, tpr, thresholds) with thresholds descending, as scikit-learn orders them.

    fpr = FAR(t) and tpr = 1 - FRR(t) at every distinct threshold (no points dropped).
    """
    curve = error_rate_curve(genuine, impostor)
    return curve.far[::-1].copy(), (1.0 - curve.frr)[::-1].copy(), curve.thresholds[::-1].copy()


def roc_auc(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> float:
    """Area under the ROC curve (trapezoidal over every distinct threshold)."""
    fpr, tpr, _ = roc_curve(genuine, impostor)
    return float(np.trapezoid(tpr, fpr))


def equal_error_rate(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> EerResult:
    """Empirical EER: where FAR and FRR cross, linearly interpolated between adjacent thresholds.

    Sweeping t upward, take the first threshold where FRR >= FAR and interpolate between it and the
    previous one; EER = (FAR + FRR) / 2 there.

    >>> equal_error_rate([0.9, 0.8, 0.7], [0.1, 0.2, 0.3]).eer
    0.0
    """
    curve = error_rate_curve(genuine, impostor)
    gap = curve.frr - curve.far
    k = int(np.argmax(gap >= 0))  # gap[-1] = 1 >= 0, so a crossing always exists; gap[0] = -1 < 0.
    g0, g1 = gap[k - 1], gap[k]
    alpha = 0.0 if g1 == g0 else float(-g0 / (g1 - g0))
    far = curve.far[k - 1] + alpha * (curve.far[k] - curve.far[k - 1])
    frr = curve.frr[k - 1] + alpha * (curve.frr[k] - curve.frr[k - 1])
    t0, t1 = curve.thresholds[k - 1], curve.thresholds[k]
    if np.isinf(t0) or np.isinf(t1):
        threshold = float(t1 if np.isinf(t0) else t0)
    else:
        threshold = float(t0 + alpha * (t1 - t0))
    return EerResult(eer=float(0.5 * (far + frr)), threshold=threshold)


def threshold_at_far(impostor: npt.ArrayLike, target_far: float) -> float:
    """Smallest threshold whose FAR on this impostor sample is <= target_far, never splitting ties.

    With impostors sorted descending q_1 >= q_2 >= ..., k = floor(target_far * n) and
    t = nextafter(q_{k+1}, +inf): at most k impostors score >= t.

    Raises:
        CalibrationError: the target is outside (0, 1] or below 1/n, which the sample cannot resolve.

    >>> t = threshold_at_far([0.1, 0.2, 0.3, 0.4, 0.5], 0.2)
    >>> 0.4 < t < 0.40001
    True
    """
    imp = as_scores(impostor, "impostor")
    check_far_resolvable(target_far, imp.size)
    k = int(math.floor(target_far * imp.size + 1e-9))
    if k >= imp.size:
        return float(np.min(imp))
    q = np.sort(imp)[::-1]
    return float(np.nextafter(q[k], np.inf))


def check_far_resolvable(target_far: float, n_impostor: int) -> None:
    """Refuse a FAR target that n_impostor impostor pairs cannot resolve (below 1/n)."""
    if not 0.0 < target_far <= 1.0:
        raise CalibrationError(f"target FAR must be in (0, 1], got {target_far}")
    needed = math.ceil(1.0 / target_far - 1e-9)
    if n_impostor < needed:
        raise CalibrationError(
            f"target FAR {target_far:g} needs at least {needed} impostor pairs to be resolved, got {n_impostor}"
        )


def operating_point(genuine: npt.ArrayLike, impostor: npt.ArrayLike, target_far: float) -> OperatingPoint:
    """Threshold at a target FAR and the FAR/FRR it gives on these scores."""
    gen = as_scores(genuine, "genuine")
    imp = as_scores(impostor, "impostor")
    t = threshold_at_far(imp, target_far)
    return OperatingPoint(
        target_far=target_far,
        threshold=t,
        far=far_at(imp, t),
        frr=frr_at(gen, t),
        n_genuine=int(gen.size),
        n_impostor=int(imp.size),
    )


def tar_at_far(
    genuine: npt.ArrayLike, impostor: npt.ArrayLike, targets: Sequence[float], skip_unresolvable: bool = False
) -> list[OperatingPoint]:
    """Operating points (threshold, FAR, TAR = 1 - FRR) at each target FAR.

    Args:
        genuine: genuine scores.
        impostor: impostor scores.
        targets: target FARs.
        skip_unresolvable: leave out targets below 1/n_impostor instead of raising.
    """
    n_imp = as_scores(impostor, "impostor").size
    points = []
    for target in targets:
        if skip_unresolvable and target * n_imp < 1.0 - 1e-9:
            continue
        points.append(operating_point(genuine, impostor, target))
    return points


def gaussian_eer(mu_genuine: float, sigma_genuine: float, mu_impostor: float, sigma_impostor: float) -> EerResult:
    """EER and its threshold when both score distributions are Gaussian.

    t = (mu_i sigma_g + mu_g sigma_i)/(sigma_g + sigma_i), EER = Phi(-(mu_g - mu_i)/(sigma_g + sigma_i)).

    >>> r = gaussian_eer(0.7, 0.1, 0.1, 0.15)
    >>> round(r.threshold, 6), round(r.eer, 7)
    (0.46, 0.0081975)
    """
    _check_sigmas(sigma_genuine, sigma_impostor)
    denom = sigma_genuine + sigma_impostor
    t = (mu_impostor * sigma_genuine + mu_genuine * sigma_impostor) / denom
    return EerResult(eer=float(norm.cdf(-(mu_genuine - mu_impostor) / denom)), threshold=float(t))


def bayes_threshold(
    mu_genuine: float,
    sigma_genuine: float,
    mu_impostor: float,
    sigma_impostor: float,
    prior_genuine: float = 0.5,
    cost_false_accept: float = 1.0,
    cost_false_reject: float = 1.0,
) -> float:
    """Bayes-optimal threshold between two Gaussian score models (the Gaussian intersection when eta = 0).

    Accept when log N(s; mu_g, sigma_g) - log N(s; mu_i, sigma_i) >= eta with
    eta = log(pi_i C_FA / (pi_g C_FR)); the boundary is the root of a t^2 + b t + c = 0 between the means.

    >>> round(bayes_threshold(0.7, 0.1, 0.1, 0.15), 6)
    0.449934
    """
    _check_sigmas(sigma_genuine, sigma_impostor)
    if not 0.0 < prior_genuine < 1.0:
        raise CalibrationError(f"prior_genuine must be in (0, 1), got {prior_genuine}")
    if cost_false_accept <= 0 or cost_false_reject <= 0:
        raise CalibrationError(f"costs must be > 0, got C_FA={cost_false_accept}, C_FR={cost_false_reject}")
    if mu_genuine <= mu_impostor:
        raise CalibrationError(f"genuine mean {mu_genuine} must exceed impostor mean {mu_impostor}")
    eta = math.log((1.0 - prior_genuine) * cost_false_accept / (prior_genuine * cost_false_reject))
    vg, vi = sigma_genuine**2, sigma_impostor**2
    a = 1.0 / vi - 1.0 / vg
    b = 2.0 * (mu_genuine / vg - mu_impostor / vi)
    c = mu_impostor**2 / vi - mu_genuine**2 / vg + 2.0 * math.log(sigma_impostor / sigma_genuine) - 2.0 * eta
    if abs(a) < 1e-12 * max(1.0 / vg, 1.0 / vi):
        return float(-c / b)
    disc = b * b - 4.0 * a * c
    if disc < 0:
        raise CalibrationError("the two Gaussian score models never cross at this prior and cost")
    # The log-likelihood ratio's slope at a root is a*t + b/2 = +-sqrt(disc)/2: the "+" root is the one where
    # it rises through eta, i.e. the accept boundary (the other root is a far-tail artefact of unequal variances).
    return float((-b + math.sqrt(disc)) / (2.0 * a))


def _check_sigmas(sigma_genuine: float, sigma_impostor: float) -> None:
    if not (sigma_genuine > 0 and sigma_impostor > 0):
        raise CalibrationError(f"standard deviations must be > 0, got {sigma_genuine}, {sigma_impostor}")
