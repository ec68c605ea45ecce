"""Start-up and shut-down: load the model, detector and gallery once, check them, warm up, then serve."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import numpy as np
from fastapi import FastAPI

from facecore.registry import ModelRegistry
from facepipe.detectors import create_detector
from service.admission import Admission
from service.auth_limiter import FailedAuthLimiter
from service.config import Settings
from service.data_lock import DataDirLock
from service.detector_choice import choose_detector
from service.gallery import Gallery
from service.metrics import Metrics
from service.pipeline import FacePipeline
from service.replica_follower import ReplicaFollower
from service.repositories import Stores, open_stores
from service.runtime import ModelRuntime, resolve_providers
from service.state import AppState
from service.switcher import ModelSwitcher

logger = logging.getLogger(__name__)


def build_state(settings: Settings, admission: Admission | None = None) -> AppState:
    """Load everything the routes need; raises (and so stops start-up) on a broken model or detector."""
    # One process per SQLite gallery; a PostgreSQL gallery is meant for several, which follow each other's changes.
    lock = DataDirLock(settings.data_dir, "starting another service on it")
    if settings.gallery_location.backend == "sqlite":
        lock.acquire()
    try:
        stores = open_stores(settings)
    except BaseException:
        lock.release()
        raise
    try:
        state = _build_state(settings, admission, lock, stores)
    except BaseException:
        stores.close()
        lock.release()
        raise
    if stores.shared and state.ready:
        state.follower = ReplicaFollower(state)
        state.follower.start()
    return state


def _build_state(settings: Settings, admission: Admission | None, lock: DataDirLock, stores: Stores) -> AppState:
    metrics = Metrics()
    registry = ModelRegistry(settings.models_dir)
    # Replicas over one database serve the model it is pinned to (another replica may have switched it).
    pinned = stores.gallery.pinned_model() if stores.shared else None
    model_id = settings.model_id or pinned or registry.active_id()
    manifest = registry.load(model_id, verify_checksum=False) if model_id is not None else None
    spec, detector_in_use, overridden = choose_detector(settings, manifest)
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if "cuda" in resolve_providers(settings) else None
    detector = create_detector(spec, providers=providers, intra_op_threads=settings.intra_op_threads)
    pipeline = FacePipeline(detector, settings, metrics)
    gallery = Gallery(stores.gallery, settings, metrics, shared=stores.shared)
    state = AppState(
        settings=settings,
        metrics=metrics,
        registry=registry,
        keys=stores.keys,
        audit=stores.audit,
        auth_limiter=FailedAuthLimiter(settings.auth_max_failures, settings.auth_failure_window_s),
        admission=admission or Admission(settings.max_in_flight),
        pipeline=pipeline,
        gallery=gallery,
        calibrations=stores.calibrations,
        stores=stores,
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
    """Stop following other replicas, stop engines and close databases."""
    if state.follower is not None:
        state.follower.stop()
    try:
        state.gallery.save_index()  # what changed since start, so the next start reads the graphs back
    finally:
        for runtime in (state.runtime, state.previous_runtime):
            if runtime is not None:
                runtime.close()
        state.stores.close()
        state.data_lock.release()


def make_lifespan(settings: Settings, admission: Admission) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
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
