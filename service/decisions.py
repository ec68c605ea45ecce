"""Which decision rules serve a model, and the enrollment gate: the service's side of facecore.decision.

The rule itself (three-way verify, open-set identify) lives in facecore.decision and knows nothing of HTTP or of
where its numbers are stored; this module picks the numbers: a calibration adopted on the service's own gallery
when there is one for the serving model, else the model's manifest.
"""

from __future__ import annotations

from facecore.decision_records import DecisionRecord, DecisionSet
from facecore.manifest import ModelManifest
from service.error_catalogue import ServiceError
from service.repositories import CalibrationRepository


def active_decision_set(manifest: ModelManifest, calibrations: CalibrationRepository) -> DecisionSet:
    """The decision set serving this model: the adopted gallery calibration, else the manifest's."""
    adopted = calibrations.active(manifest.model_id)
    if adopted is not None:
        return adopted
    calibration = manifest.calibration
    if calibration is None or calibration.decision_set is None:
        raise ServiceError(
            "model_not_calibrated",
            f"model {manifest.model_id!r} has no three-way decision rule, so it cannot decide; "
            f"run `dprime calibrate models/{manifest.model_id} --all-impostors GALLERY`",
        )
    return calibration.decision_set


def decision_rule(decision_set: DecisionSet, name: str | None) -> DecisionRecord:
    """A rule by name (None: the set's default), or a bad_request naming the ones there are."""
    names = [d.name for d in decision_set.decisions]
    # Only None means "the default": an empty or unknown name is a mistake to report, not to paper over.
    if name is not None and name not in names:
        raise ServiceError(
            "bad_request", f"unknown operating point {name!r}; this model decides at {names}", {"available": names}
        )
    return decision_set.decision(name)


def enroll_refusal(kappa: float, manifest: ModelManifest) -> str | None:
    """Why enrollment refuses a face of this kappa, by the manifest's recorded rule (None: it does not)."""
    u = manifest.uncertainty
    if u.enroll_kappa_min is None or kappa >= u.enroll_kappa_min:
        return None
    return f"face certainty kappa={kappa:.2f} is below {u.enroll_kappa_min:.2f}: {u.enroll_rule or 'the model rule'}"
