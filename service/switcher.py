"""Hot model switches: load the target, re-embed the gallery into a shadow index, then swap atomically.

The switch runs as a background job. Requests keep being served by the current model until the swap;
the final catch-up (faces enrolled during the re-embedding) and the swap happen under the gallery's
switch lock. The replaced model stays loaded as ``previous_runtime`` and its embeddings stay in SQLite,
so rolling back needs no re-embedding of the faces it already had.

Over PostgreSQL, one replica leads a switch: it holds a database advisory lock, re-embeds the gallery once and
pins the new model in the database; the other replicas see the pin move and follow (``follow``), re-embedding
only faces enrolled in the meantime.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from facecore.errors import DprimeError
from service.error_catalogue import ServiceError, as_service_error
from service.runtime import ModelRuntime
from service.schemas import Action, SwitchJob
from service.state import AppState

if TYPE_CHECKING:
    from service.deps import Auditor

logger = logging.getLogger(__name__)


class ModelSwitcher:
    """Runs at most one switch at a time and remembers every job of this process."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.jobs: dict[str, SwitchJob] = {}
        self._busy = threading.Lock()

    def start(self, action: Action, target: str | None = None, auditor: Auditor | None = None) -> SwitchJob:
        """Begin switching to ``target`` (activate) or to the previously active model (rollback).

        The auditor, when given, records how the switch ended (it runs after the request has been answered).
        """
        if action == "rollback":
            ptr = self.state.registry.pointer()
            if ptr is None or not ptr.history:
                raise ServiceError("unknown_model", "nothing to roll back to: no previously active model is recorded")
            target = ptr.history[-1]
        if target is None:
            raise ServiceError("bad_request", "a target model id is required")
        self.state.registry.load(target, verify_checksum=False)  # unknown ids fail now, with a 404
        if not self._busy.acquire(blocking=False):
            raise ServiceError("model_switch_in_progress", "another model switch is running; wait for it to finish")
        release_lead = self.state.stores.try_lead_switch()
        if release_lead is None:
            self._busy.release()
            raise ServiceError("model_switch_in_progress", "another replica is switching models; wait for it to finish")
        current = self.state.runtime.model_id if self.state.runtime else None
        job = SwitchJob(
            job_id=uuid.uuid4().hex[:12],
            action=action,
            target_model_id=target,
            from_model_id=current,
            status="running",
            started=datetime.now(UTC),
        )
        self.jobs[job.job_id] = job
        threading.Thread(
            target=self._run, args=(job, auditor, release_lead), name=f"switch-{job.job_id}", daemon=True
        ).start()
        return job

    def follow(self, target: str) -> bool:
        """Serve ``target``, which another replica has switched the shared gallery to; False when a switch of this
        process is running (the follower tries again later)."""
        if not self._busy.acquire(blocking=False):
            return False
        try:
            self._swap_to(target, None, None)
        finally:
            self._busy.release()
        logger.info("followed the gallery to model %s", target)
        return True

    def _run(self, job: SwitchJob, auditor: Auditor | None, release_lead: Callable[[], None]) -> None:
        try:
            self._switch(job)
            job.status = "succeeded"
            logger.info("model switch %s: now serving %s", job.job_id, job.target_model_id)
        except Exception as exc:
            err = as_service_error(exc) if isinstance(exc, DprimeError) else ServiceError("internal_error", str(exc))
            if not isinstance(exc, DprimeError):
                logger.exception("model switch %s failed", job.job_id)
            job.status = "failed"
            job.error = {"code": err.code, "message": err.message, "details": err.details}
            logger.error("model switch %s to %s failed: %s", job.job_id, job.target_model_id, err.message)
        finally:
            job.finished = datetime.now(UTC)
            release_lead()
            self._busy.release()
            if auditor is not None:
                details = {"job_id": job.job_id, "action": job.action, "from": job.from_model_id, "error": job.error}
                auditor.record("model.switch", job.target_model_id, job.status, details)

    def _switch(self, job: SwitchJob) -> None:
        def report(done: int, total: int) -> None:
            job.faces_done, job.faces_total = done, total

        self._swap_to(job.target_model_id, job.action, report)

    def _swap_to(self, target: str, action: Action | None, report: Callable[[int, int], None] | None) -> None:
        """Load target, re-embed what it lacks, swap; action None: follow another replica (the registry's
        pointer is the leader's to move)."""
        state = self.state
        prev = state.previous_runtime
        if prev is not None and prev.model_id == target:
            runtime = prev
        else:
            runtime = ModelRuntime.load(state.registry, target, state.settings, state.metrics)
            runtime.warmup()

        retired: ModelRuntime | None = None
        try:
            state.gallery.reembed_missing(runtime, state.pipeline, report)  # bulk, while serving continues
            shadow = state.gallery.build_index(runtime)  # the new model's index (a graph takes minutes), still serving
            with state.gallery.switch_lock.write():
                state.gallery.attach(runtime, state.pipeline, report, shadow)  # catch-up, shadow index in step, pin
                if action == "rollback":
                    state.registry.rollback()
                elif action == "activate":
                    state.registry.activate(target)
                with state.lock:
                    old = state.runtime
                    state.runtime = runtime
                    retired = state.previous_runtime if state.previous_runtime is not runtime else None
                    state.previous_runtime = old
                state.metrics.set_active_model(target)
                state.metrics.configure_buckets(runtime.manifest)
        except BaseException:
            if runtime is not prev:
                runtime.close()
            raise
        if retired is not None and retired is not state.runtime:
            retired.close()
