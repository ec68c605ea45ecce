"""Open-set identification thresholds from a labelled similarity matrix (docs/method.md, "Identification").

A search by a person who is not enrolled names someone when the highest of the gallery's N impostor scores
reaches the threshold. Scores that share a probe are correlated, so the FPIR is not 1 - (1 - FAR)^N; instead each
calibration face is taken as a probe against galleries of N faces drawn from the other people's faces. For a
probe with K such faces of which c score below t, a random gallery of N of them stays below t with probability
C(c, N) / C(K, N), exactly, so no sampling is needed.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

from facecore.decision_records import IdentificationPoint, IdentificationRecord
from facecore.errors import CalibrationError

FloatArray = npt.NDArray[np.float64]

GALLERY_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000)


def independent_fpir(far: float, gallery_size: int) -> float:
    """FPIR if the N impostor scores were independent (a reference value, not what is fitted).

    >>> round(independent_fpir(1e-3, 1000), 4), round(independent_fpir(1e-5, 1000), 6)
    (0.6323, 0.00995)
    """
    return 1.0 - (1.0 - far) ** gallery_size


def _log_comb(n: FloatArray, k: int) -> FloatArray:
    out: FloatArray = gammaln(n + 1) - gammaln(k + 1) - gammaln(np.maximum(n - k, 0) + 1)
    return out


def _stay_below(below: FloatArray, total: FloatArray, n: int) -> FloatArray:
    """P(all n faces drawn without replacement from `total` fall among the `below` ones)."""
    out = np.zeros_like(below, dtype=np.float64)
    ok = below >= n
    out[ok] = np.exp(_log_comb(below[ok], n) - _log_comb(total[ok], n))
    return out


class ProbeTable:
    """Each probe's impostor scores, sorted, from a similarity matrix and identity labels."""

    def __init__(
        self,
        similarity: FloatArray,
        labels: npt.NDArray[np.generic],
        sources: npt.NDArray[np.generic] | None = None,
    ) -> None:
        labels = np.asarray(labels)
        if similarity.shape != (labels.size, labels.size):
            raise CalibrationError(f"similarity must be {labels.size}x{labels.size}, got {similarity.shape}")
        same = labels[:, None] == labels[None, :]
        # A probe searches a gallery of its own source only (see facecore.decision_fit.all_pairs for why).
        other = ~same if sources is None else ~same & (sources[:, None] == sources[None, :])
        masked = np.where(other, similarity, -np.inf)
        self.sorted = np.sort(masked, axis=1)
        self.n_impostors = other.sum(axis=1).astype(np.float64)
        self.offset = labels.size - self.n_impostors  # the -inf entries at the start of each row
        self.similarity = similarity
        self.same = same
        self._mate_cache: tuple[npt.NDArray[np.int64], FloatArray, FloatArray] | None = None

    def _mates(self) -> tuple[npt.NDArray[np.int64], FloatArray, FloatArray]:
        """Every ordered genuine pair: probe row, mate score, and how many of the probe's impostors score below it."""
        if self._mate_cache is None:
            rows, cols = np.nonzero(self.same & ~np.eye(self.same.shape[0], dtype=bool))
            mate = self.similarity[rows, cols]
            below = np.empty(rows.size)
            for r in np.unique(rows):
                sel = rows == r
                below[sel] = np.searchsorted(self.sorted[r], mate[sel], side="left") - self.offset[r]
            self._mate_cache = (rows.astype(np.int64), mate, below)
        return self._mate_cache

    def below(self, t: float) -> FloatArray:
        """How many of each probe's impostor scores are below t."""
        out: FloatArray = (self.sorted < t).sum(axis=1) - self.offset
        return out

    def fpir(self, t: float, gallery_size: int) -> float:
        """Share of non-mated searches of `gallery_size` faces whose best impostor reaches t."""
        usable = self.n_impostors >= gallery_size
        if not usable.any():
            return float("nan")
        stay = _stay_below(self.below(t)[usable], self.n_impostors[usable], gallery_size)
        return float(1.0 - stay.mean())

    def threshold(self, target_fpir: float, gallery_size: int) -> float:
        """Lowest threshold whose FPIR is at most the target (bisection over the score range)."""
        finite = self.sorted[np.isfinite(self.sorted)]
        lo, hi = float(finite.min()), float(np.nextafter(finite.max(), np.inf))
        if self.fpir(lo, gallery_size) <= target_fpir:
            return lo
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if self.fpir(mid, gallery_size) <= target_fpir:
                hi = mid
            else:
                lo = mid
        return hi

    def rank1_hit_rate(self, t: float, gallery_size: int) -> float:
        """Share of mated searches (a probe against a gallery holding one other face of its person and
        gallery_size - 1 faces of other people) whose mate reaches t and beats every impostor."""
        rows, mate, below = self._mates()
        if rows.size == 0:
            return float("nan")
        others = max(gallery_size - 1, 0)
        usable = self.n_impostors[rows] >= others
        beat = _stay_below(below[usable], self.n_impostors[rows][usable], others)
        hits = (mate[usable] >= t) * beat
        return float(hits.mean()) if hits.size else float("nan")


def fit_identification(
    similarity: FloatArray,
    labels: npt.NDArray[np.generic],
    target_fpir: float,
    min_probe_factor: float = 10.0,
    sizes: tuple[int, ...] = GALLERY_SIZES,
    sources: npt.NDArray[np.generic] | None = None,
) -> IdentificationRecord:
    """Thresholds keeping target_fpir at each gallery size the calibration can represent.

    ``sources`` (one label per face) keeps each probe's galleries within its own source.

    Raises:
        CalibrationError: fewer than min_probe_factor / target_fpir probes.
    """
    table = ProbeTable(similarity, labels, sources)
    n_probes = int(similarity.shape[0])
    needed = math.ceil(min_probe_factor / target_fpir)
    if n_probes < needed:
        raise CalibrationError(
            f"FPIR {target_fpir:g} needs at least {needed} calibration faces as probes, got {n_probes}",
            {"faces": n_probes, "faces_needed": needed},
        )
    max_size = int(np.quantile(table.n_impostors, 0.05))
    points = []
    for n in (s for s in sizes if s <= max_size):
        t = table.threshold(target_fpir, n)
        points.append(
            IdentificationPoint(
                gallery_size=n, threshold=t, fpir=table.fpir(t, n), rank1_hit_rate=table.rank1_hit_rate(t, n)
            )
        )
    if not points or points[-1].gallery_size < max_size:
        t = table.threshold(target_fpir, max_size)
        points.append(
            IdentificationPoint(
                gallery_size=max_size,
                threshold=t,
                fpir=table.fpir(t, max_size),
                rank1_hit_rate=table.rank1_hit_rate(t, max_size),
            )
        )
    return IdentificationRecord(target_fpir=target_fpir, n_probes=n_probes, max_gallery_size=max_size, points=points)
