"""The model registry over HTTP: list models (read) and switch or roll back the serving one (admin)."""

from __future__ import annotations

from fastapi import APIRouter, status

from facecore.decision_records import DecisionSet
from facecore.manifest import ModelManifest
from service.deps import AdminKey, AuditedAdmin, ReadKey, StateDep
from service.error_catalogue import ServiceError
from service.openapi import admin_errors, read_errors
from service.responses import calibration_ref
from service.schemas import DetectorInfo, ModelList, ModelOut, SwitchJob

router = APIRouter(tags=["models"])


def model_out(
    m: ModelManifest,
    active_id: str | None,
    serving_id: str | None,
    decision_set: DecisionSet | None = None,
    detector: DetectorInfo | None = None,
) -> ModelOut:
    """API view of a manifest (with the decision set that serves it, which may be a gallery calibration)."""
    cal = m.calibration
    ds = decision_set or (cal.decision_set if cal else None)
    return ModelOut(
        model_id=m.model_id,
        created=m.created,
        backbone=m.backbone,
        loss=m.loss,
        embedding_dim=m.embedding_dim,
        calibrated=cal is not None,
        active=m.model_id == active_id,
        serving=m.model_id == serving_id,
        kappa_trained=m.uncertainty.kappa_trained,
        enroll_kappa_min=m.uncertainty.enroll_kappa_min,
        enroll_rule=m.uncertainty.enroll_rule,
        operating_points=[p.model_dump() for p in cal.operating_points] if cal else [],
        default_operating_point=cal.default_operating_point if cal else None,
        calibration=calibration_ref(ds) if ds else None,
        decisions=ds.decisions if ds else [],
        identification=ds.identification if ds else None,
        score_histogram=ds.histogram if ds else None,
        detector=detector,
    )


@router.get("/v1/models", response_model=ModelList, responses=read_errors())
def list_models(state: StateDep, _: ReadKey) -> ModelList:
    """Every model in the registry, which one is active and which one serves."""
    registry = state.registry
    serving = state.runtime.model_id if state.runtime else None
    active = registry.active_id()
    models = [model_out(registry.load(mid, verify_checksum=False), active, serving) for mid in registry.model_ids()]
    return ModelList(serving_model_id=serving, models=models)


@router.get("/v1/models/active", response_model=ModelOut, responses=read_errors())
def active_model(state: StateDep, _: ReadKey) -> ModelOut:
    """The serving model with its operating points."""
    runtime = state.active_runtime()
    adopted = state.calibrations.active(runtime.model_id)
    detector = DetectorInfo(
        in_use=state.detector_in_use, calibrated_with=runtime.manifest.detector, overridden=state.detector_overridden
    )
    return model_out(runtime.manifest, state.registry.active_id(), runtime.model_id, adopted, detector)


@router.post(
    "/v1/admin/models/{model_id}/activate",
    response_model=SwitchJob,
    status_code=status.HTTP_202_ACCEPTED,
    responses=admin_errors(404, 409),
)
def activate(state: StateDep, audit: AuditedAdmin, model_id: str) -> SwitchJob:
    """Start switching to model_id: re-embed the gallery into a shadow index, then swap. Poll the job."""
    job = state.switcher.start("activate", model_id, audit)
    audit.record("model.activate", model_id, "started", {"job_id": job.job_id, "from": job.from_model_id})
    return job


@router.post(
    "/v1/admin/models/rollback",
    response_model=SwitchJob,
    status_code=status.HTTP_202_ACCEPTED,
    responses=admin_errors(404, 409),
)
def rollback(state: StateDep, audit: AuditedAdmin) -> SwitchJob:
    """Start switching back to the previously active model."""
    job = state.switcher.start("rollback", None, audit)
    audit.record("model.rollback", job.target_model_id, "started", {"job_id": job.job_id, "from": job.from_model_id})
    return job


@router.get("/v1/admin/jobs/{job_id}", response_model=SwitchJob, responses=admin_errors(404))
def job(state: StateDep, _: AdminKey, job_id: str) -> SwitchJob:
    """Progress of a model switch."""
    found = state.switcher.jobs.get(job_id)
    if found is None:
        raise ServiceError("unknown_job", f"no job {job_id!r} in this process", {"job_id": job_id})
    return found
