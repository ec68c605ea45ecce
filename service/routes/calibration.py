"""Calibration in the user's own domain over HTTP (admin): measure it, adopt it, revert it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from facecore.errors import CalibrationError
from service.deps import AdminKey, AuditedAdmin, StateDep
from service.error_catalogue import ServiceError
from service.gallery_calibration import adopt, measure
from service.openapi import admin_errors
from service.routes.forms import optional
from service.schemas import AdoptResult, GalleryReport, RevertResult

router = APIRouter(prefix="/v1/admin", tags=["calibration"])

# The schema as served lists the serving model's rules (service.openapi patches the enum in).
RuleQuery = Annotated[
    str | None,
    optional({"type": "string"}),
    Query(description="the rule to measure (default: the serving default)"),
]


@router.get("/calibration", response_model=GalleryReport, responses=admin_errors(400, 409))
def gallery_report(state: StateDep, _: AdminKey, rule: RuleQuery = None) -> GalleryReport:
    """Observed FAR and miss rate of each band on the enrolled faces, and whether the stated rates hold."""
    runtime = state.active_runtime()
    with state.gallery.switch_lock.read():
        n_boot = state.settings.calibration_n_boot
        return measure(state.gallery.store, runtime.manifest, state.calibrations, rule, n_boot)


@router.post(
    "/calibration", response_model=AdoptResult, status_code=status.HTTP_201_CREATED, responses=admin_errors(400, 409)
)
def adopt_gallery_calibration(state: StateDep, audit: AuditedAdmin, rule: RuleQuery = None) -> AdoptResult:
    """Refit the thresholds on the enrolled faces and adopt them; refused (409) when the gallery is too small."""
    runtime = state.active_runtime()
    try:
        with state.gallery.switch_lock.read():
            n_boot = state.settings.calibration_n_boot
            result = adopt(state.gallery.store, runtime.manifest, state.calibrations, rule, n_boot)
    except CalibrationError as exc:
        raise ServiceError("calibration_unresolved", str(exc), dict(exc.details)) from exc
    audit.record("calibration.adopt", runtime.model_id, details={"rule": rule})
    return result


@router.delete("/calibration", response_model=RevertResult, responses=admin_errors())
def revert_gallery_calibration(state: StateDep, audit: AuditedAdmin) -> RevertResult:
    """Return decisions to the model manifest's calibration."""
    runtime = state.active_runtime()
    reverted = state.calibrations.revert(runtime.model_id)
    audit.record("calibration.revert", runtime.model_id, details={"reverted": reverted})
    return RevertResult(model_id=runtime.model_id, reverted=reverted, calibration_id="manifest")
