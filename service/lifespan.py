"""Start-up and shut-down: load the model, detector and gallery once, check them, warm up, then serve."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
from fastapi import FastAPI

from facecore.registry import ModelRegistry
from facepipe.detectors import create_detector
from service.admission import Admission
from service.audit import AuditLog
from service.auth_limiter import FailedAuthLimiter
from service.calibration_store import CalibrationStore
from service.config import Settings
from service.data_lock import DataDirLock
from service.detector_choice import choose_detector
from service.gallery import Gallery
from service.gallery_store import GalleryStore
from service.keys import KeyStore
from service.metrics import Metrics
from service.pipeline import FacePipeline
from service.runtime import ModelRuntime, resolve_providers
from service.state import AppState
from service.switcher import ModelSwitcher

logger = logging.getLogger(__name__)


def build_state(settings: Settings, admission: Admission | None = None) -> AppState:
    """Load everything the routes need; raises (and so stops start-up) on a broken model or detector."""
    lock = DataDirLock(settings.data_dir, "starting another service on it")
    lock.acquire()
    try:
        return _build_state(settings, admission, lock)
    except BaseException:
        lock.release()
        raise


def _build_state(settings: Settings, admission: Admission | None, lock: DataDirLock) -> AppState:
    metrics = Metrics()
    registry = ModelRegistry(settings.models_dir)
    model_id = settings.model_id or registry.active_id()
    manifest = registry.load(model_id, verify_checksum=False) if model_id is not None else None
    spec, detector_in_use, overridden = choose_detector(settings, manifest)
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if "cuda" in resolve_providers(settings) else None
    detector = create_detector(spec, providers=providers, intra_op_threads=settings.intra_op_threads)
    pipeline = FacePipeline(detector, settings, metrics)
    gallery = Gallery(GalleryStore(settings.gallery_path), settings, metrics)
    state = AppState(
        settings=settings,
        metrics=metrics,
        registry=registry,
        keys=KeyStore(settings.keys_path, settings.key_touch_interval_s),
        audit=AuditLog(settings.audit_path),
        auth_limiter=FailedAuthLimiter(settings.auth_max_failures, settings.auth_failure_window_s),
        admission=admission or Admission(settings.max_in_flight),
        pipeline=pipeline,
        gallery=gallery,
        calibrations=CalibrationStore(settings.calibrations_path),
        detector_in_use=detector_in_use,
        detector_overridden=overridden,
        data_lock=lock,
    )
    state.switcher = ModelSwitcher(state)
    if model_id is None:
        state.not_ready_reason = (
            f"no active model in {settings.models_dir}: run `dprime models activate ID` or set DPRIME_MODEL_ID"
        )
        logger.warning("%s; serving health only", state.not_ready_reason)
        return state
    runtime = ModelRuntime.load(registry, model_id, settings, metrics)
    try:
        gallery.attach(runtime, pipeline)
        if settings.warmup:
            runtime.warmup()
            detector.detect(np.zeros((64, 64, 3), dtype=np.uint8))
    except BaseException:
        runtime.close()
        raise
    state.runtime = runtime
    metrics.set_active_model(model_id)
    metrics.configure_buckets(runtime.manifest)
    state.ready, state.not_ready_reason = True, ""
    n_ids, n_faces = gallery.store.counts()
    logger.info("ready: model %s, gallery of %d identities / %d faces", model_id, n_ids, n_faces)
    return state


def close_state(state: AppState) -> None:
    """Stop engines and close databases."""
    for runtime in (state.runtime, state.previous_runtime):
        if runtime is not None:
            runtime.close()
    state.gallery.store.close()
    state.keys.close()
    state.audit.close()
    state.data_lock.release()
    state.calibrations.close()


def make_lifespan(settings: Settings, admission: Admission):  # type: ignore[no-untyped-def]
    """The app's lifespan, bound to its settings and its admission counter."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = build_state(settings, admission)
        app.state.dprime = state
        try:
            yield
        finally:
            state.ready = False
            close_state(state)

    return lifespan
