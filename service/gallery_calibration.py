"""Calibration in the user's own domain: measure, and adopt, decision rules on the enrolled gallery.

Every cross-identity pair of enrolled faces is an impostor pair and every pair of one identity's faces a genuine
pair, so the gallery itself tells whether the stated FAR and miss bound hold on this camera and these people. An
adopted gallery calibration keeps the manifest's targets and band layout and refits the thresholds; it is refused,
with the number of people needed, when the gallery cannot resolve the targets. No HTTP here: the admin routes and
`dprime calibrate --gallery` both call these functions.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import numpy as np

from facecore.decision_check import check_decision
from facecore.decision_fit import LabelledScores, RuleParams, all_pairs, fit_decision
from facecore.decision_records import DecisionSet
from facecore.errors import CalibrationError
from facecore.identification import fit_identification
from facecore.manifest import ModelManifest
from facecore.registry import ModelRegistry
from service.audit import CLI_ACTOR
from service.config import Settings
from service.decisions import active_decision_set, decision_rule
from service.gallery_records import GalleryRepository
from service.repositories import CalibrationRepository, open_stores
from service.schemas import AdoptResult, GalleryReport, GallerySample

logger = logging.getLogger(__name__)


def gallery_pairs(store: GalleryRepository, model_id: str, dim: int) -> tuple[LabelledScores, np.ndarray, np.ndarray]:
    """All pairs of the enrolled faces under one model, with each face's direction and person."""
    vectors, owners = store.labelled_vectors(model_id, dim)
    _, person = np.unique(owners, return_inverse=True)
    mu = vectors.vectors.astype(np.float64)
    return all_pairs(mu, vectors.kappas, person.astype(np.int64)), mu, person


def _sample(pairs: LabelledScores, n_faces: int) -> GallerySample:
    return GallerySample(
        identities=int(np.unique(pairs.people).size) if pairs.people.size else 0,
        faces=n_faces,
        genuine_pairs=int(pairs.same.sum()),
        impostor_pairs=int((~pairs.same).sum()),
    )


def measure(
    store: GalleryRepository,
    manifest: ModelManifest,
    calibrations: CalibrationRepository,
    rule_name: str | None = None,
    n_boot: int = 200,
) -> GalleryReport:
    """Observed FAR and miss rate of the serving rule's bands on the enrolled faces."""
    decision_set = active_decision_set(manifest, calibrations)
    rule = decision_rule(decision_set, rule_name)
    pairs, mu, _ = gallery_pairs(store, manifest.model_id, manifest.embedding_dim)
    bands = check_decision(rule, pairs, n_boot) if pairs.scores.size else []
    verdicts = [v for b in bands for v in (b.far_holds, b.miss_holds) if v is not None]
    return GalleryReport(
        model_id=manifest.model_id,
        calibration_id=decision_set.id,
        calibration_source=decision_set.source,
        rule=rule.name,
        sample=_sample(pairs, mu.shape[0]),
        bands=bands,
        holds=all(verdicts) if verdicts else None,
    )


def fit_gallery(
    store: GalleryRepository, manifest: ModelManifest, base: DecisionSet, rule_name: str | None, n_boot: int
) -> tuple[DecisionSet, str]:
    """A decision set refitted on the gallery with the base rule's targets (raises CalibrationError if it cannot)."""
    base_rule = decision_rule(base, rule_name)
    pairs, mu, person = gallery_pairs(store, manifest.model_id, manifest.embedding_dim)
    params = RuleParams(
        target_far=base_rule.target_far,
        miss_bound=base_rule.miss_bound,
        n_bands=max(len(base_rule.bands), 1),
        confidence=base_rule.confidence,
        min_pairs_factor=base_rule.min_pairs_factor,
        min_identities=base_rule.min_identities,
        n_boot=n_boot,
    )
    rule = fit_decision(base_rule.name, pairs, params)
    identification, source = base.identification, "manifest"
    if base.identification is not None:
        try:
            identification = fit_identification(
                mu @ mu.T, person, base.identification.target_fpir, base_rule.min_pairs_factor
            )
            source = "gallery"
        except CalibrationError as exc:
            logger.info("identification stays the manifest's: %s", exc)
    n_ids = int(np.unique(person).size)
    fitted = DecisionSet(
        id="pending",
        source="gallery",
        name=f"gallery:{manifest.model_id}[{n_ids} identities, {mu.shape[0]} faces]",
        created=datetime.now(UTC),
        decisions=[rule],
        default_decision=rule.name,
        identification=identification,
        histogram=base.histogram,
    )
    return fitted, source


def adopt(
    store: GalleryRepository,
    manifest: ModelManifest,
    calibrations: CalibrationRepository,
    rule_name: str | None = None,
    n_boot: int = 200,
) -> AdoptResult:
    """Fit on the gallery and adopt; the active calibration is untouched when the fit is refused."""
    base = manifest.calibration.decision_set if manifest.calibration else None
    if base is None:
        raise CalibrationError(f"model {manifest.model_id!r} has no manifest rule whose targets a gallery could keep")
    fitted, source = fit_gallery(store, manifest, base, rule_name, n_boot)
    stored = calibrations.adopt(manifest.model_id, fitted)
    report = measure(store, manifest, calibrations, fitted.default_decision, n_boot)
    logger.info("adopted gallery calibration %s for %s", stored.id, manifest.model_id)
    return AdoptResult(
        calibration_id=stored.id,
        version_ids=calibrations.versions(manifest.model_id),
        rule=stored.decisions[0],
        identification_from=source,
        report=report,
    )


def calibrate_offline(settings: Settings, target_far: float, n_boot: int) -> AdoptResult:
    """`dprime calibrate --gallery`: adopt a gallery calibration for the gallery's pinned model, outside the service.

    The gallery is where the service keeps it (``settings.gallery_location``: the data directory's SQLite files, or
    the PostgreSQL database, where running replicas read the adopted calibration on their next decision).
    """
    stores = open_stores(settings)
    try:
        registry = ModelRegistry(settings.models_dir)
        model_id = stores.gallery.pinned_model() or registry.active_id()
        if model_id is None:
            raise CalibrationError(
                f"the gallery at {stores.location.redacted()} is pinned to no model and {settings.models_dir} "
                "has none active"
            )
        manifest = registry.load(model_id, verify_checksum=False)
        base = manifest.calibration.decision_set if manifest.calibration else None
        rule_name = None
        if base is not None:
            rule_name = next((d.name for d in base.decisions if d.target_far == target_far), None)
            if rule_name is None:
                names = [d.name for d in base.decisions]
                raise CalibrationError(f"model {model_id!r} has no rule for FAR {target_far:g}; it has {names}")
        result = adopt(stores.gallery, manifest, stores.calibrations, rule_name, n_boot)
        stores.audit.record(CLI_ACTOR, "calibration.adopt", model_id, None, details={"rule": rule_name})
        return result
    finally:
        stores.close()
