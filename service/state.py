"""What the lifespan builds and the routes read: one AppState on ``app.state.dprime``."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from facecore.decision_records import DetectorRecord
from facecore.registry import ModelRegistry
from service.admission import Admission
from service.auth_limiter import FailedAuthLimiter
from service.config import Settings
from service.data_lock import DataDirLock
from service.error_catalogue import ServiceError
from service.gallery import Gallery
from service.metrics import Metrics
from service.pipeline import FacePipeline
from service.repositories import AuditRepository, CalibrationRepository, KeyRepository, Stores
from service.runtime import ModelRuntime

if TYPE_CHECKING:
    from service.replica_follower import ReplicaFollower
    from service.switcher import ModelSwitcher


@dataclass
class AppState:
    """Long-lived objects of one app instance."""

    settings: Settings
    metrics: Metrics
    registry: ModelRegistry
    keys: KeyRepository
    audit: AuditRepository
    auth_limiter: FailedAuthLimiter
    admission: Admission
    pipeline: FacePipeline
    gallery: Gallery
    calibrations: CalibrationRepository
    stores: Stores
    detector_in_use: DetectorRecord
    data_lock: DataDirLock
    detector_overridden: bool = False
    runtime: ModelRuntime | None = None
    previous_runtime: ModelRuntime | None = None
    ready: bool = False
    not_ready_reason: str = "starting"
    lock: threading.Lock = field(default_factory=threading.Lock)
    switcher: ModelSwitcher = field(init=False)
    follower: ReplicaFollower | None = None

    def active_runtime(self) -> ModelRuntime:
        """The model serving requests, or model_not_ready."""
        runtime = self.runtime
        if runtime is None or not self.ready:
            raise ServiceError(
                "model_not_ready", f"no model is ready: {self.not_ready_reason}", headers={"Retry-After": "5"}
            )
        return runtime
