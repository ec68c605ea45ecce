"""`dprime evaluate`: verification and retrieval metrics on a pair protocol, plus what kappa is worth.

All metric math comes from facecore; retrieval metrics come from pytorch-metric-learning's
AccuracyCalculator. Writes ``report.json`` and PNG plots (score histograms with d' and thresholds, ROC,
risk-coverage) into the output directory.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from facecore.calibration import equal_error_rate, roc_auc, tar_at_far
from facecore.decidability import d_prime_interval
from facecore.fileio import atomic_write_text
from facecore.protocols import held_out_errors, stratified_folds
from facecore.uncertainty import RiskCoverage, pair_certainty, risk_coverage
from facecore.vmf import embedding_to_vmf
from training.data.pairs import PairSet
from training.embedding import found_rows

logger = logging.getLogger(__name__)

TAR_TARGETS = (1e-2, 1e-3)


class RetrievalMetrics(BaseModel):
    """P@1, R-Precision and MAP@R over the protocol's images (identities with >= 2 images as queries)."""

    precision_at_1: float
    r_precision: float
    map_at_r: float
    n_queries: int


class EvalReport(BaseModel):
    """Everything `dprime evaluate` measured on one pair set."""

    benchmark: str
    pair_set_fingerprint: str
    n_pairs: int
    n_genuine: int
    n_impostor: int
    accuracy_mean: float
    accuracy_std: float
    n_folds: int
    eer: float
    eer_threshold: float
    roc_auc: float
    tar_at_far: dict[str, float]
    d_prime: float
    d_prime_low: float
    d_prime_high: float
    d_prime_method: str
    genuine_mean: float
    impostor_mean: float
    retrieval: RetrievalMetrics | None
    risk_coverage: RiskCoverage
    kappa_percentiles: dict[str, float]
    flip: bool
    images_without_face: int = 0
    pairs_without_face: int = 0


def pair_scores(
    embeddings: npt.NDArray[np.float32], pairs: PairSet
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(cosine, certainty = min kappa) of every pair."""
    mu, kappa = embedding_to_vmf(embeddings)
    scores = np.sum(mu[pairs.first] * mu[pairs.second], axis=1)
    return scores, pair_certainty(kappa[pairs.first], kappa[pairs.second])


def retrieval_metrics(mu: npt.NDArray[np.float64], identities: list[str]) -> RetrievalMetrics | None:
    """PML's AccuracyCalculator over unit embeddings, each image querying all others."""
    import torch
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

    labels = np.unique(np.asarray(identities), return_inverse=True)[1]
    counts = np.bincount(labels)
    keep = counts[labels] >= 2
    if keep.sum() < 2:
        return None
    calc = AccuracyCalculator(
        include=("precision_at_1", "r_precision", "mean_average_precision_at_r"), k="max_bin_count"
    )
    x = torch.from_numpy(mu[keep].astype(np.float32))
    y = torch.from_numpy(labels[keep])
    acc = calc.get_accuracy(x, y, x, y, ref_includes_query=True)
    return RetrievalMetrics(
        precision_at_1=float(acc["precision_at_1"]),
        r_precision=float(acc["r_precision"]),
        map_at_r=float(acc["mean_average_precision_at_r"]),
        n_queries=int(keep.sum()),
    )


def evaluate_embeddings(
    embeddings: npt.NDArray[np.float32],
    pairs: PairSet,
    flip: bool = False,
    n_boot: int = 1000,
    with_retrieval: bool = True,
) -> EvalReport:
    """Every metric of one pair set from the raw embeddings of its images (NaN rows: no face, left out)."""
    found = found_rows(embeddings)
    usable = found[pairs.first] & found[pairs.second]
    dropped = int((~usable).sum())
    pairs = pairs.subset(usable)
    scores, certainty = pair_scores(embeddings, pairs)
    same = pairs.same
    gen, imp = scores[same == 1], scores[same == 0]
    # A single protocol fold (a held-out subset) is split 10 ways by class, so thresholds still come from other pairs.
    folds = pairs.folds if np.unique(pairs.folds).size >= 2 else stratified_folds(same, 10)
    # Decisions at the threshold each fold chose on the other folds, so the errors kappa must predict are honest.
    kfold, errors = held_out_errors(scores, same, folds)
    eer = equal_error_rate(gen, imp)
    ids = pairs.pair_identities()
    if ids is not None:
        gen_ids = ids[0][same == 1]
        imp_ids = np.stack([ids[0][same == 0], ids[1][same == 0]], axis=1)
        dp = d_prime_interval(gen, imp, n_boot=n_boot, genuine_ids=gen_ids, impostor_ids=imp_ids)
    else:
        dp = d_prime_interval(gen, imp, n_boot=n_boot)
    mu, kappa = embedding_to_vmf(embeddings[found])
    kept_ids = [pairs.identities[i] for i in np.nonzero(found)[0]] if pairs.identities else None
    retrieval = retrieval_metrics(mu, kept_ids) if with_retrieval and kept_ids else None
    pct = np.percentile(kappa, [5, 25, 50, 75, 95])
    return EvalReport(
        benchmark=pairs.name,
        pair_set_fingerprint=pairs.fingerprint(),
        n_pairs=pairs.n_pairs,
        n_genuine=int(gen.size),
        n_impostor=int(imp.size),
        accuracy_mean=kfold.mean,
        accuracy_std=kfold.std,
        n_folds=len(kfold.thresholds),
        eer=eer.eer,
        eer_threshold=eer.threshold,
        roc_auc=roc_auc(gen, imp),
        tar_at_far={f"{p.target_far:g}": p.tar for p in tar_at_far(gen, imp, TAR_TARGETS, skip_unresolvable=True)},
        d_prime=dp.value,
        d_prime_low=dp.low,
        d_prime_high=dp.high,
        d_prime_method=dp.method,
        genuine_mean=float(gen.mean()),
        impostor_mean=float(imp.mean()),
        retrieval=retrieval,
        risk_coverage=risk_coverage(errors, certainty),
        kappa_percentiles={f"p{q}": float(v) for q, v in zip((5, 25, 50, 75, 95), pct, strict=True)},
        flip=flip,
        images_without_face=int((~found).sum()),
        pairs_without_face=dropped,
    )


def write_report(
    report: EvalReport, scores: npt.NDArray[np.float64], same: npt.NDArray[np.int64], out: Path, stem: str = "report"
) -> Path:
    """report.json plus the plots, into out."""
    from training.plots import plot_risk_coverage, plot_roc, plot_score_histograms

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem}.json"
    atomic_write_text(path, report.model_dump_json(indent=2) + "\n")
    gen, imp = scores[same == 1], scores[same == 0]
    marks: dict[str, Any] = {"EER": report.eer_threshold}
    plot_score_histograms(gen, imp, report.d_prime, marks, out / f"{stem}_scores.png", report.benchmark)
    plot_roc(gen, imp, out / f"{stem}_roc.png", report.benchmark)
    plot_risk_coverage(report.risk_coverage, out / f"{stem}_risk_coverage.png", report.benchmark)
    return path


def run_evaluate(
    pair_specs: list[str],
    out: Path,
    checkpoint: Path | None = None,
    model_dir: Path | None = None,
    flip: bool = False,
    folds: list[int] | None = None,
    detector: str = "retinaface",
    cache_dir: Path | None = None,
    workers: int | None = None,
    n_boot: int = 1000,
) -> list[EvalReport]:
    """Embed and evaluate each pair set with a checkpoint (torch) or an exported model (onnxruntime)."""
    from facepipe.detectors import spec_from_string
    from training.data.pairs import load_pairs
    from training.embedding import BatchEmbedder, OnnxBatchEmbedder, detect_all, embed_images

    if (checkpoint is None) == (model_dir is None):
        raise ValueError("give exactly one of a checkpoint or a model directory")
    embedder: BatchEmbedder
    if checkpoint is not None:
        from training.checkpoint_model import TorchBatchEmbedder

        embedder = TorchBatchEmbedder(checkpoint)
    else:
        embedder = OnnxBatchEmbedder(model_dir)  # type: ignore[arg-type]
    reports = []
    for spec in pair_specs:
        pairs = load_pairs(spec)
        if folds:
            pairs = pairs.subset(np.isin(pairs.folds, folds), f"{pairs.name}[folds {','.join(map(str, folds))}]")
        detections = None if pairs.aligned else detect_all(pairs.images, spec_from_string(detector), cache_dir, workers)
        embeddings = embed_images(pairs.images, embedder, detections, flip)
        report = evaluate_embeddings(embeddings, pairs, flip, n_boot)
        found = found_rows(embeddings)
        pairs = pairs.subset(found[pairs.first] & found[pairs.second])
        scores, _ = pair_scores(embeddings, pairs)
        stem = "report" if len(pair_specs) == 1 else "report_" + "".join(c if c.isalnum() else "_" for c in pairs.name)
        path = write_report(report, scores, pairs.same, Path(out), stem)
        logger.info(
            "%s: accuracy %.4f +- %.4f, EER %.4f, d' %.2f [%.2f, %.2f], kappa gain %.2f -> %s",
            pairs.name,
            report.accuracy_mean,
            report.accuracy_std,
            report.eer,
            report.d_prime,
            report.d_prime_low,
            report.d_prime_high,
            report.risk_coverage.gain,
            path,
        )
        reports.append(report)
    return reports
