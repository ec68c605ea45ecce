"""`dprime calibrate models/<id> --pairs ...`: measure every number a decision needs, with the exported ONNX.

Embeds a calibration pair set through onnxruntime (the service's own path, not torch), then writes into
the manifest: genuine/impostor statistics, d' with its interval, the EER and its threshold, the Bayes
threshold, operating points at target FARs (refusing targets the impostor count cannot resolve), kappa
percentiles and kappa_min. ``--all-impostors GALLERY`` scores every cross-identity pair of a labelled
gallery to reach low FARs; ``--check PAIRS`` reports the observed FAR/FRR of a manifest's operating points.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel
from scipy.stats import binom

from facecore.calibration import (
    bayes_threshold,
    check_far_resolvable,
    equal_error_rate,
    far_at,
    frr_at,
    operating_point,
)
from facecore.constants import REPORT_DIRNAME
from facecore.decidability import d_prime_interval, far_identity_interval, score_stats
from facecore.errors import CalibrationError
from facecore.manifest import (
    CalibrationRecord,
    DPrimeRecord,
    ModelManifest,
    OperatingPointRecord,
    PairSetRecord,
    ScoreStatsRecord,
    UncertaintyRecord,
    load_manifest,
    save_manifest,
)
from facecore.uncertainty import kappa_min_for_budget, kappa_percentiles, pair_certainty, risk_coverage
from facecore.vmf import embedding_to_vmf
from training.data.datasets import IMAGE_SUFFIXES, DatasetError
from training.data.pairs import PairSet, load_pairs

logger = logging.getLogger(__name__)

DEFAULT_FAR = 1e-3
DEFAULT_KAPPA_BUDGET = 0.30


@dataclass
class ScoredPairs:
    """Cosines, labels and certainties of a calibration (or check) sample."""

    name: str
    fingerprint: str
    scores: npt.NDArray[np.float64]
    same: npt.NDArray[np.int64]
    certainty: npt.NDArray[np.float64]
    kappas: npt.NDArray[np.float64]
    genuine_ids: npt.NDArray[np.str_] | None
    impostor_ids: npt.NDArray[np.str_] | None
    mode: Literal["pairs", "all_impostors"] = "pairs"

    @property
    def genuine(self) -> npt.NDArray[np.float64]:
        """Same-identity scores."""
        out: npt.NDArray[np.float64] = self.scores[self.same == 1]
        return out

    @property
    def impostor(self) -> npt.NDArray[np.float64]:
        """Different-identity scores."""
        out: npt.NDArray[np.float64] = self.scores[self.same == 0]
        return out


def far_name(target: float) -> str:
    """'far_1e-3' for powers of ten, else 'far_<value>'."""
    exponent = math.log10(target)
    if abs(exponent - round(exponent)) < 1e-9:
        return f"far_1e{round(exponent)}"
    return f"far_{target:g}"


def _embed(
    model_dir: Path,
    images: Sequence[Path | bytes],
    aligned: bool,
    detector: str,
    cache_dir: Path | None,
    workers: int | None,
) -> npt.NDArray[np.float32]:
    from facepipe.detectors import spec_from_string
    from training.embedding import OnnxBatchEmbedder, detect_all, embed_images

    embedder = OnnxBatchEmbedder(model_dir)
    detections = None if aligned else detect_all(images, spec_from_string(detector), cache_dir, workers)
    return embed_images(images, embedder, detections)


def score_pair_sets(
    model_dir: Path,
    specs: Sequence[str],
    folds: Sequence[int] | None = None,
    detector: str = "retinaface",
    cache_dir: Path | None = None,
    workers: int | None = None,
) -> ScoredPairs:
    """Score one or more pair protocols (optionally restricted to some folds) with the exported model."""
    parts: list[ScoredPairs] = []
    for spec in specs:
        pairs: PairSet = load_pairs(spec)
        if folds:
            pairs = pairs.subset(np.isin(pairs.folds, list(folds)), f"{pairs.name}[folds {','.join(map(str, folds))}]")
        mu, kappa = embedding_to_vmf(_embed(model_dir, pairs.images, pairs.aligned, detector, cache_dir, workers))
        scores = np.sum(mu[pairs.first] * mu[pairs.second], axis=1)
        ids = pairs.pair_identities()
        parts.append(
            ScoredPairs(
                name=pairs.name,
                fingerprint=pairs.fingerprint(),
                scores=scores,
                same=pairs.same,
                certainty=pair_certainty(kappa[pairs.first], kappa[pairs.second]),
                kappas=kappa,
                genuine_ids=ids[0][pairs.same == 1] if ids else None,
                impostor_ids=np.stack([ids[0][pairs.same == 0], ids[1][pairs.same == 0]], axis=1) if ids else None,
            )
        )
    return concat_samples(parts)


def concat_samples(parts: list[ScoredPairs]) -> ScoredPairs:
    """One sample from several (pairs never cross parts)."""
    if len(parts) == 1:
        return parts[0]
    with_ids = all(p.genuine_ids is not None for p in parts)
    return ScoredPairs(
        name="+".join(p.name for p in parts),
        fingerprint="+".join(p.fingerprint for p in parts),
        scores=np.concatenate([p.scores for p in parts]),
        same=np.concatenate([p.same for p in parts]),
        certainty=np.concatenate([p.certainty for p in parts]),
        kappas=np.concatenate([p.kappas for p in parts]),
        genuine_ids=np.concatenate([p.genuine_ids for p in parts]) if with_ids else None,
        impostor_ids=np.concatenate([p.impostor_ids for p in parts]) if with_ids else None,
        mode="all_impostors" if all(p.mode == "all_impostors" for p in parts) else "pairs",
    )


def score_gallery(
    model_dir: Path,
    gallery: Path,
    detector: str = "retinaface",
    cache_dir: Path | None = None,
    workers: int | None = None,
    include: set[str] | None = None,
    aligned: bool = False,
) -> ScoredPairs:
    """Every pair of a labelled gallery (gallery/<identity>/<image>): all genuine and all impostor pairs."""
    import hashlib

    names = sorted(p.name for p in Path(gallery).iterdir() if p.is_dir() and (include is None or p.name in include))
    files: list[Path] = []
    labels: list[str] = []
    for name in names:
        for f in sorted((Path(gallery) / name).iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                files.append(f)
                labels.append(name)
    if len(set(labels)) < 2:
        raise DatasetError(f"{gallery} needs images of at least 2 identities for all-impostor calibration")
    mu, kappa = embedding_to_vmf(_embed(model_dir, files, aligned, detector, cache_dir, workers))
    iu = np.triu_indices(len(files), k=1)
    sims = (mu @ mu.T)[iu]
    lab = np.asarray(labels)
    same = (lab[iu[0]] == lab[iu[1]]).astype(np.int64)
    digest = hashlib.sha256("\n".join(f"{f.relative_to(gallery)}:{f.stat().st_size}" for f in files).encode())
    return ScoredPairs(
        name=f"all-pairs:{Path(gallery).name}[{len(set(labels))} identities]",
        fingerprint=digest.hexdigest()[:16],
        scores=sims,
        same=same,
        certainty=pair_certainty(kappa[iu[0]], kappa[iu[1]]),
        kappas=kappa,
        genuine_ids=lab[iu[0]][same == 1],
        impostor_ids=np.stack([lab[iu[0]][same == 0], lab[iu[1]][same == 0]], 1),
        mode="all_impostors",
    )


def build_calibration(
    sample: ScoredPairs, targets: Sequence[float], default_far: float | None, kappa_budget: float, n_boot: int = 1000
) -> tuple[CalibrationRecord, UncertaintyRecord]:
    """The calibration and uncertainty records of a scored sample (pure: no files touched).

    Targets are refused when the impostor count cannot resolve them; the default point is the FAR target
    ``default_far`` when given, else the EER point.
    """
    gen, imp = sample.genuine, sample.impostor
    for t in targets:
        check_far_resolvable(t, imp.size)
    eer = equal_error_rate(gen, imp)
    g, i = score_stats(gen, "genuine"), score_stats(imp, "impostor")
    dp = d_prime_interval(gen, imp, n_boot=n_boot, genuine_ids=sample.genuine_ids, impostor_ids=sample.impostor_ids)
    points = []
    for t in targets:
        op = operating_point(gen, imp, t)
        points.append(
            OperatingPointRecord(
                name=far_name(t),
                target_far=t,
                threshold=op.threshold,
                far=op.far,
                frr=op.frr,
                n_genuine=op.n_genuine,
                n_impostor=op.n_impostor,
            )
        )
    points.append(
        OperatingPointRecord(
            name="eer",
            target_far=None,
            threshold=eer.threshold,
            far=far_at(imp, eer.threshold),
            frr=frr_at(gen, eer.threshold),
            n_genuine=int(gen.size),
            n_impostor=int(imp.size),
        )
    )
    default = far_name(default_far) if default_far is not None else "eer"
    try:
        bayes: float | None = bayes_threshold(g.mean, g.std, i.mean, i.std)
    except CalibrationError:
        bayes = None
    record = CalibrationRecord(
        pair_set=PairSetRecord(
            name=sample.name,
            fingerprint=sample.fingerprint,
            n_genuine=int(gen.size),
            n_impostor=int(imp.size),
            mode=sample.mode,
        ),
        genuine=ScoreStatsRecord(mean=g.mean, std=g.std, count=g.count),
        impostor=ScoreStatsRecord(mean=i.mean, std=i.std, count=i.count),
        d_prime=DPrimeRecord(value=dp.value, low=dp.low, high=dp.high, confidence=dp.confidence, method=dp.method),
        eer=eer.eer,
        eer_threshold=eer.threshold,
        bayes_threshold=bayes,
        operating_points=points,
        default_operating_point=default,
        created=datetime.now(UTC),
    )
    # METHOD.md §4.3: kappa_min is where the FRR at the deployed threshold, among genuine pairs whose less
    # certain face is below it, exceeds the budget (impostor pairs would swamp an overall error rate).
    threshold = record.point().threshold
    genuine = sample.same == 1
    kappa_min = kappa_min_for_budget(sample.scores[genuine] < threshold, sample.certainty[genuine], kappa_budget)
    uncertainty = UncertaintyRecord(
        kappa_trained=True,
        kappa_min=kappa_min,
        error_budget=kappa_budget,
        kappa_percentiles=kappa_percentiles(sample.kappas),
    )
    return record, uncertainty


class CheckRow(BaseModel):
    """Observed error rates of one operating point on a held-out sample.

    ``target_interval`` is the central 95 % range of the FAR a sample of this many impostor pairs would show
    if the true FAR were the target and the pairs were independent (binomial). Pairs that share people are
    not, so ``observed_interval`` resamples the people instead (a 95 % identity bootstrap of the observed FAR);
    a calibration holds on these people when the target lies inside it (``target_within_observed_interval``).
    """

    name: str
    target_far: float | None
    threshold: float
    calibrated_far: float
    observed_far: float
    target_interval: tuple[float, float] | None
    observed_within_interval: bool | None
    observed_interval: tuple[float, float] | None = None
    target_within_observed_interval: bool | None = None
    observed_frr: float
    n_genuine: int
    n_impostor: int


def binomial_interval(rate: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Central interval of k/n for k ~ Binomial(n, rate)."""
    lo, hi = binom.interval(confidence, n, rate)
    return float(lo) / n, float(hi) / n


def check_operating_points(manifest: ModelManifest, sample: ScoredPairs, n_boot: int = 1000) -> list[CheckRow]:
    """Observed FAR/FRR of each operating point on another sample; is each target inside the FAR interval?"""
    if manifest.calibration is None:
        raise CalibrationError(f"model {manifest.model_id!r} is not calibrated")
    gen, imp = sample.genuine, sample.impostor
    rows = []
    for p in manifest.calibration.operating_points:
        observed = float(np.count_nonzero(imp >= p.threshold) / imp.size)
        interval = None if p.target_far is None else binomial_interval(p.target_far, imp.size)
        by_people = None
        if p.target_far is not None and sample.impostor_ids is not None:
            by_people = far_identity_interval(imp, sample.impostor_ids, p.threshold, n_boot=n_boot)
        rows.append(
            CheckRow(
                name=p.name,
                target_far=p.target_far,
                threshold=p.threshold,
                calibrated_far=p.far,
                observed_far=observed,
                target_interval=interval,
                observed_within_interval=None if interval is None else bool(interval[0] <= observed <= interval[1]),
                observed_interval=by_people,
                target_within_observed_interval=(
                    None if by_people is None or p.target_far is None else by_people[0] <= p.target_far <= by_people[1]
                ),
                observed_frr=frr_at(gen, p.threshold),
                n_genuine=int(gen.size),
                n_impostor=int(imp.size),
            )
        )
    return rows


def calibrate_model(
    model_dir: Path,
    sample: ScoredPairs,
    targets: Sequence[float],
    default_far: float | None,
    kappa_budget: float = DEFAULT_KAPPA_BUDGET,
    n_boot: int = 1000,
) -> ModelManifest:
    """Write calibration, kappa statistics and the HTML report into a model directory."""
    manifest = load_manifest(model_dir)
    record, uncertainty = build_calibration(sample, targets, default_far, kappa_budget, n_boot)
    uncertainty = uncertainty.model_copy(update={"kappa_trained": manifest.uncertainty.kappa_trained})
    updated = manifest.model_copy(update={"calibration": record, "uncertainty": uncertainty})
    updated = ModelManifest.model_validate(updated.model_dump())
    from training.calibration_report import write_calibration_report

    write_calibration_report(updated, sample, Path(model_dir) / REPORT_DIRNAME)
    save_manifest(updated, model_dir)
    p = record.point()
    logger.info(
        "calibrated %s on %s: d'=%.2f [%.2f, %.2f], EER %.4f at %.4f, %s threshold %.4f (FAR %.2e, FRR %.4f), "
        "kappa_min=%s",
        updated.model_id,
        sample.name,
        record.d_prime.value,
        record.d_prime.low,
        record.d_prime.high,
        record.eer,
        record.eer_threshold,
        p.name,
        p.threshold,
        p.far,
        p.frr,
        uncertainty.kappa_min,
    )
    risk = risk_coverage((sample.scores >= p.threshold) != (sample.same == 1), sample.certainty)
    logger.info("risk-coverage at %s: gain %.2f over random rejection", p.name, risk.gain)
    return updated
