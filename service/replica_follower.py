"""Keeps one replica in step with the others over a shared (PostgreSQL) gallery.

A background thread polls the database every ``replica_poll_interval_s``: it applies the enrollments and
deletions other replicas committed to this process's index, and when the gallery's pinned model moved (another
replica led a switch or a rollback), it switches this process too. A poll is two indexed reads, so a short
interval costs the database little and bounds how stale a replica can be. Keys need nothing: every request reads
them from the database.
"""

from __future__ import annotations

import logging
import threading

from service.state import AppState

logger = logging.getLogger(__name__)


class ReplicaFollower:
    """The polling thread of one process."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.interval_s = state.settings.replica_poll_interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="replica-follower", daemon=True)

    def start(self) -> None:
        """Begin polling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=max(5.0, 10 * self.interval_s))

    def poll_once(self) -> None:
        """Apply other replicas' changes and follow a model switch."""
        state = self.state
        pinned = state.gallery.store.pinned_model()
        current = state.runtime.model_id if state.runtime is not None else None
        if pinned is not None and current is not None and pinned != current:
            state.switcher.follow(pinned)
        state.gallery.follow()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.poll_once()
            except Exception:  # the database may be briefly away; the next poll tries again
                logger.exception("could not follow the shared gallery; retrying in %.1f s", self.interval_s)
