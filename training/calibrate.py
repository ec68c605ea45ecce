"""`dprime calibrate models/<id> --all-impostors GALLERY`: measure every number a decision needs.

Embeds a calibration set through facepipe's face path with the exported ONNX (the service's own path: images in
which it finds no face are left out and counted), then writes into the manifest: genuine/impostor statistics, d'
with its interval, the EER, operating points whose identity-bootstrap FAR stays within their target, the three-way
rule per FAR target (accept and reject thresholds per kappa band, their rates, LLR calibration and Cllr), the
identification thresholds per gallery size for an FPIR target, score histograms, kappa percentiles, the enrollment
rule and the detector it all was measured with. ``--check PAIRS`` reports observed rates on other people.
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

from facecore.calibration import (
    bayes_threshold,
    check_far_resolvable,
    equal_error_rate,
    far_at,
    frr_at,
)
from facecore.constants import REPORT_DIRNAME
from facecore.decidability import d_prime_interval, score_stats
from facecore.decision_fit import DecisionSettings, LabelledScores, all_pairs, fit_decision
from facecore.decision_records import DecisionSet, ScoreHistogramRecord
from facecore.errors import CalibrationError
from facecore.identification import fit_identification
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
from facecore.uncertainty import kappa_percentiles, pair_certainty, risk_coverage
from facecore.vmf import embedding_to_vmf
from facepipe.detectors import DetectorSpec, detector_record, spec_from_string
from training.data.datasets import IMAGE_SUFFIXES, DatasetError
from training.data.pairs import PairSet, load_pairs
from training.embedding import found_rows

logger = logging.getLogger(__name__)

DEFAULT_FAR = 1e-3
ENROLL_PERCENTILE = 1.0
# Edges of the service's kappa histogram (Prometheus buckets, recorded in the manifest): these percentiles of the
# calibration faces' kappa, so every bucket holds a known share of faces like the ones calibrated on.
KAPPA_BUCKET_PERCENTILES = (0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 100)


@dataclass
class ScoredPairs:
    """Cosines, labels and certainties of a calibration (or check) sample.

    ``people`` holds each pair's two people as indices into ``labels``; an all-pairs sample also keeps every
    image's direction and person, which the identification thresholds need.
    """

    name: str
    fingerprint: str
    scores: npt.NDArray[np.float64]
    same: npt.NDArray[np.int64]
    certainty: npt.NDArray[np.float64]
    kappas: npt.NDArray[np.float64]
    labels: npt.NDArray[np.str_] | None
    people: npt.NDArray[np.int64] | None
    mode: Literal["pairs", "all_impostors"] = "pairs"
    mu: npt.NDArray[np.float64] | None = None
    image_people: npt.NDArray[np.int64] | None = None
    image_sources: npt.NDArray[np.str_] | None = None
    images_without_face: int = 0
    pairs_without_face: int = 0

    @property
    def genuine_ids(self) -> npt.NDArray[np.int64] | None:
        """The person of each genuine pair."""
        return None if self.people is None else self.people[self.same == 1, 0]

    @property
    def impostor_ids(self) -> npt.NDArray[np.int64] | None:
        """The two people of each impostor pair."""
        return None if self.people is None else self.people[self.same == 0]

    def labelled(self) -> LabelledScores:
        """The sample as the decision fit takes it."""
        if self.people is None:
            raise CalibrationError(f"{self.name} has no identity labels; the three-way rule needs them")
        return LabelledScores(self.scores, self.same == 1, self.certainty, self.people)

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


def embed_for_calibration(
    model_dir: Path,
    images: Sequence[Path | bytes],
    aligned: bool,
    detector: str | DetectorSpec,
    cache_dir: Path | None,
    workers: int | None,
) -> npt.NDArray[np.float32]:
    """Raw embeddings through the face path and the exported model; NaN rows where no face was found.

    With a cache_dir, the result is kept there, keyed by the model's sha256, the detector and the images.
    """
    import hashlib

    from training.embedding import OnnxBatchEmbedder, detect_all, embed_images

    spec = spec_from_string(detector) if isinstance(detector, str) else detector
    embedder = OnnxBatchEmbedder(model_dir)
    cached = None
    if cache_dir is not None:
        digest = hashlib.sha256(f"{embedder.manifest.model_sha256}|{spec.model_dump_json()}|{aligned}".encode())
        for src in images:
            digest.update(
                src if isinstance(src, bytes) else f"{Path(src).resolve()}:{Path(src).stat().st_size}".encode()
            )
        cached = Path(cache_dir) / f"embeddings_{digest.hexdigest()[:20]}.npy"
        if cached.is_file():
            out: npt.NDArray[np.float32] = np.load(cached)
            return out
    detections = None if aligned else detect_all(images, spec, cache_dir, workers)
    raw = embed_images(images, embedder, detections)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.save(cached, raw)
    return raw


def score_pair_sets(
    model_dir: Path,
    specs: Sequence[str],
    folds: Sequence[int] | None = None,
    detector: str | DetectorSpec = "retinaface",
    cache_dir: Path | None = None,
    workers: int | None = None,
) -> ScoredPairs:
    """Score one or more pair protocols (optionally restricted to some folds) with the exported model."""
    parts: list[ScoredPairs] = []
    for spec in specs:
        pairs: PairSet = load_pairs(spec)
        if folds:
            pairs = pairs.subset(np.isin(pairs.folds, list(folds)), f"{pairs.name}[folds {','.join(map(str, folds))}]")
        raw = embed_for_calibration(model_dir, pairs.images, pairs.aligned, detector, cache_dir, workers)
        found = found_rows(raw)
        usable = found[pairs.first] & found[pairs.second]
        all_pairs = int(usable.size)
        pairs = pairs.subset(usable)
        mu, kappa = embedding_to_vmf(np.where(found[:, None], raw, 1.0))
        scores = np.sum(mu[pairs.first] * mu[pairs.second], axis=1)
        labels, people = None, None
        if pairs.identities is not None:
            labels, index = np.unique(np.asarray(pairs.identities), return_inverse=True)
            people = np.stack([index[pairs.first], index[pairs.second]], axis=1).astype(np.int64)
        parts.append(
            ScoredPairs(
                name=pairs.name,
                fingerprint=pairs.fingerprint(),
                scores=scores,
                same=pairs.same,
                certainty=pair_certainty(kappa[pairs.first], kappa[pairs.second]),
                kappas=kappa[found],
                labels=labels,
                people=people,
                images_without_face=int((~found).sum()),
                pairs_without_face=all_pairs - int(usable.sum()),
            )
        )
    return concat_samples(parts)


def concat_samples(parts: list[ScoredPairs]) -> ScoredPairs:
    """One sample from several (pairs never cross parts; a name in several parts is one person)."""
    if len(parts) == 1:
        return parts[0]
    with_ids = all(p.labels is not None and p.people is not None for p in parts)
    labels, people, image_people = None, None, None
    if with_ids:
        labels = np.unique(np.concatenate([p.labels for p in parts]))
        people = np.concatenate([np.searchsorted(labels, p.labels[p.people]) for p in parts])  # type: ignore[index]
    with_mu = with_ids and all(p.mu is not None and p.image_people is not None for p in parts)
    if with_mu:
        image_people = np.concatenate(
            [np.searchsorted(labels, p.labels[p.image_people]) for p in parts]  # type: ignore[arg-type,index]
        )
    return ScoredPairs(
        name="+".join(p.name for p in parts),
        fingerprint="+".join(p.fingerprint for p in parts),
        scores=np.concatenate([p.scores for p in parts]),
        same=np.concatenate([p.same for p in parts]),
        certainty=np.concatenate([p.certainty for p in parts]),
        kappas=np.concatenate([p.kappas for p in parts]),
        labels=labels,
        people=people,
        mode="all_impostors" if all(p.mode == "all_impostors" for p in parts) else "pairs",
        mu=np.concatenate([p.mu for p in parts]) if with_mu else None,
        image_people=image_people,
        images_without_face=sum(p.images_without_face for p in parts),
        pairs_without_face=sum(p.pairs_without_face for p in parts),
    )


def score_gallery(
    model_dir: Path,
    gallery: Path,
    detector: str | DetectorSpec = "retinaface",
    cache_dir: Path | None = None,
    workers: int | None = None,
    include: set[str] | None = None,
    aligned: bool = False,
) -> ScoredPairs:
    """Every pair of a labelled gallery (gallery/<identity>/<image>): all genuine and all impostor pairs."""
    names = sorted(p.name for p in Path(gallery).iterdir() if p.is_dir() and (include is None or p.name in include))
    files: list[Path] = []
    labels: list[str] = []
    for name in names:
        for f in sorted((Path(gallery) / name).iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                files.append(f)
                labels.append(name)
    return score_labelled(model_dir, files, labels, Path(gallery).name, detector, cache_dir, workers, aligned)


def score_labelled(
    model_dir: Path,
    files: Sequence[Path],
    labels: Sequence[str],
    name: str,
    detector: str | DetectorSpec = "retinaface",
    cache_dir: Path | None = None,
    workers: int | None = None,
    aligned: bool = False,
    sources: Sequence[str] | None = None,
) -> ScoredPairs:
    """Every pair among labelled images (one label = one person, whichever folder its images come from).

    ``sources`` names where each image comes from; impostor pairs across two sources are left out
    (facecore.decision_fit.all_pairs says why).
    """
    import hashlib

    if len(set(labels)) < 2:
        raise DatasetError(f"{name} needs images of at least 2 identities for all-impostor calibration")
    raw = embed_for_calibration(model_dir, files, aligned, detector, cache_dir, workers)
    found = found_rows(raw)
    if found.sum() < len(files):
        logger.info("%s: %d of %d images have no face and are left out", name, (~found).sum(), len(files))
    digest = hashlib.sha256(
        "\n".join(
            f"{lab}/{Path(f).name}:{Path(f).stat().st_size}" for f, lab in zip(files, labels, strict=True)
        ).encode()
    )
    mu, kappa = embedding_to_vmf(raw[found])
    kept = np.asarray(labels)[found]
    kept_sources = None if sources is None else np.asarray(sources)[found]
    sample = all_pairs_sample(
        mu, kappa, kept, f"all-pairs:{name}[{len(set(kept))} identities]", digest.hexdigest()[:16], kept_sources
    )
    sample.images_without_face = int((~found).sum())
    return sample


def all_pairs_sample(
    mu: npt.NDArray[np.float64],
    kappa: npt.NDArray[np.float64],
    names: npt.NDArray[np.str_],
    name: str,
    fingerprint: str,
    sources: npt.NDArray[np.str_] | None = None,
) -> ScoredPairs:
    """Every pair among labelled faces (directions mu, certainties kappa): the sample a gallery calibrates on.

    With ``sources``, impostor pairs are taken within one source only."""
    labels, person = np.unique(names, return_inverse=True)
    pairs = all_pairs(mu, kappa, person.astype(np.int64), sources)
    return ScoredPairs(
        name=name,
        fingerprint=fingerprint,
        scores=pairs.scores,
        same=pairs.same.astype(np.int64),
        certainty=pairs.quality,
        kappas=kappa,
        labels=labels,
        people=pairs.people,
        mode="all_impostors",
        mu=mu,
        image_people=person.astype(np.int64),
        image_sources=sources,
    )


def build_calibration(
    sample: ScoredPairs,
    targets: Sequence[float],
    default_far: float | None,
    settings: DecisionSettings | None = None,
    n_boot: int = 1000,
) -> tuple[CalibrationRecord, UncertaintyRecord]:
    """The calibration and uncertainty records of a scored sample (pure: no files touched).

    Targets are refused when the sample cannot resolve them (the error names how many people it would take);
    the default point is the FAR target ``default_far`` when given, else the first target.
    """
    settings = settings or DecisionSettings()
    gen, imp = sample.genuine, sample.impostor
    for t in targets:
        check_far_resolvable(t, imp.size)
    eer = equal_error_rate(gen, imp)
    g, i = score_stats(gen, "genuine"), score_stats(imp, "impostor")
    dp = d_prime_interval(gen, imp, n_boot=n_boot, genuine_ids=sample.genuine_ids, impostor_ids=sample.impostor_ids)
    labelled = sample.labelled()
    decisions = [fit_decision(far_name(t), labelled, settings.params(t, n_boot)) for t in targets]
    points = []
    for t, rule in zip(targets, decisions, strict=True):
        # The point's threshold is the three-way rule's overall accept threshold, whose FAR interval holds.
        threshold = rule.overall.accept_threshold
        points.append(
            OperatingPointRecord(
                name=far_name(t),
                target_far=t,
                threshold=threshold,
                far=far_at(imp, threshold),
                frr=frr_at(gen, threshold),
                n_genuine=int(gen.size),
                n_impostor=int(imp.size),
                far_interval=rule.overall.far_interval,
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
    default = far_name(default_far if default_far is not None else targets[0])
    try:
        bayes: float | None = bayes_threshold(g.mean, g.std, i.mean, i.std)
    except CalibrationError:
        bayes = None
    identification = None
    if sample.mu is not None and sample.image_people is not None:
        try:
            identification = fit_identification(
                sample.mu @ sample.mu.T,
                sample.image_people,
                settings.fpir,
                settings.min_pairs_factor,
                sources=sample.image_sources,
            )
        except CalibrationError as exc:
            logger.warning("no identification thresholds, so the model cannot search: %s", exc)
    created = datetime.now(UTC)
    decision_set = DecisionSet(
        id="manifest",
        source="manifest",
        name=sample.name,
        created=created,
        decisions=decisions,
        default_decision=default,
        identification=identification,
        histogram=score_histogram(gen, imp),
    )
    record = CalibrationRecord(
        pair_set=PairSetRecord(
            name=sample.name,
            fingerprint=sample.fingerprint,
            n_genuine=int(gen.size),
            n_impostor=int(imp.size),
            mode=sample.mode,
            images_without_face=sample.images_without_face,
            pairs_without_face=sample.pairs_without_face,
        ),
        genuine=ScoreStatsRecord(mean=g.mean, std=g.std, count=g.count),
        impostor=ScoreStatsRecord(mean=i.mean, std=i.std, count=i.count),
        d_prime=DPrimeRecord(value=dp.value, low=dp.low, high=dp.high, confidence=dp.confidence, method=dp.method),
        eer=eer.eer,
        eer_threshold=eer.threshold,
        bayes_threshold=bayes,
        operating_points=points,
        default_operating_point=default,
        created=created,
        decision_set=decision_set,
    )
    return record, uncertainty_record(sample.kappas)


def score_histogram(
    genuine: npt.NDArray[np.float64], impostor: npt.NDArray[np.float64], width: float = 0.025
) -> ScoreHistogramRecord:
    """Densities of both score samples on shared bins of the given width, covering both."""
    low = math.floor(min(genuine.min(), impostor.min()) / width) * width
    high = math.ceil(max(genuine.max(), impostor.max()) / width) * width
    edges = np.round(np.arange(low, high + width / 2, width), 6)
    dens_g, _ = np.histogram(genuine, edges, density=True)
    dens_i, _ = np.histogram(impostor, edges, density=True)
    return ScoreHistogramRecord(
        edges=edges.tolist(), genuine=np.round(dens_g, 5).tolist(), impostor=np.round(dens_i, 5).tolist()
    )


def uncertainty_record(kappas: npt.NDArray[np.float64]) -> UncertaintyRecord:
    """kappa percentiles, monitoring buckets and the enrollment rule of the calibration faces."""
    enroll = float(np.percentile(kappas, ENROLL_PERCENTILE))
    buckets = np.unique(np.round(np.percentile(kappas, KAPPA_BUCKET_PERCENTILES), 2))
    return UncertaintyRecord(
        kappa_trained=True,
        enroll_kappa_min=enroll,
        enroll_rule=(
            f"enrollment refuses a face whose kappa is below {enroll:.2f}, the {ENROLL_PERCENTILE:g}st percentile "
            "of the calibration faces: too few faces that uncertain were measured to promise anything for them"
        ),
        kappa_buckets=buckets.tolist(),
        kappa_percentiles=kappa_percentiles(kappas),
    )


def calibrate_model(
    model_dir: Path,
    sample: ScoredPairs,
    targets: Sequence[float],
    default_far: float | None,
    settings: DecisionSettings | None = None,
    n_boot: int = 1000,
    detector: DetectorSpec | None = None,
) -> ModelManifest:
    """Write calibration, kappa statistics, the detector record and the HTML report into a model directory."""
    manifest = load_manifest(model_dir)
    record, uncertainty = build_calibration(sample, targets, default_far, settings, n_boot)
    uncertainty = uncertainty.model_copy(update={"kappa_trained": manifest.uncertainty.kappa_trained})
    update: dict[str, object] = {"calibration": record, "uncertainty": uncertainty}
    if detector is not None:
        update["detector"] = detector_record(detector)
    updated = ModelManifest.model_validate(manifest.model_copy(update=update).model_dump())
    from training.calibration_report import write_calibration_report

    write_calibration_report(updated, sample, Path(model_dir) / REPORT_DIRNAME)
    save_manifest(updated, model_dir)
    p = record.point()
    logger.info(
        "calibrated %s on %s: d'=%.2f [%.2f, %.2f], EER %.4f at %.4f, %s threshold %.4f (FAR %.2e, FRR %.4f)",
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
    )
    if record.decision_set is not None:
        for rule in record.decision_set.decisions:
            for band in (rule.overall, *rule.bands):
                logger.info(
                    "%s band %s [%s, %s): accept %.4f (FAR %.2e, interval %.2e-%.2e), reject %.4f (miss %.4f), "
                    "%d genuine / %d impostor pairs, %s",
                    rule.name,
                    band.name,
                    band.quality_low,
                    band.quality_high,
                    band.accept_threshold,
                    band.far,
                    *band.far_interval,
                    band.reject_threshold,
                    band.miss_rate,
                    band.n_genuine,
                    band.n_impostor,
                    "resolved" if band.resolved else f"unresolved (needs {band.identities_needed} people)",
                )
            logger.info("%s: Cllr %.4f banded, %.4f overall", rule.name, rule.cllr, rule.cllr_overall)
    risk = risk_coverage((sample.scores >= p.threshold) != (sample.same == 1), sample.certainty)
    logger.info("risk-coverage at %s: gain %.2f over random rejection", p.name, risk.gain)
    return updated
