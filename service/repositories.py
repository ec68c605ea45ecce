"""The storage the service talks to, one interface per kind, whatever the backend; and opening them from settings.

SQLite keeps today's files under the data directory (gallery, keys, audit, calibrations); PostgreSQL keeps all four
in one database, which is what lets several replicas act as one service.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from facecore.decision_records import DecisionSet
from service.audit import AuditAction, AuditEntry, AuditLog
from service.calibration_store import CalibrationStore
from service.config import Settings
from service.gallery_records import GalleryRepository
from service.gallery_store import GalleryStore
from service.gallery_url import GalleryLocation
from service.keys import KeyInfo, KeyStore, Role

logger = logging.getLogger(__name__)


class KeyRepository(Protocol):
    """API keys."""

    def create(
        self, name: str, role: Role, expires: datetime | None = None, collections: Sequence[str] | None = None
    ) -> tuple[KeyInfo, str]: ...
    def revoke(self, key_id: str) -> bool: ...
    def list(self) -> list[KeyInfo]: ...
    def lookup(self, key: str) -> KeyInfo | None: ...
    def role_of(self, key: str) -> Role | None: ...
    def close(self) -> None: ...


class AuditRepository(Protocol):
    """The append-only audit trail."""

    def record(
        self,
        key_name: str,
        action: AuditAction,
        target: str | None,
        request_id: str | None,
        outcome: str = "ok",
        details: dict[str, Any] | None = None,
    ) -> None: ...
    def entries(self, limit: int, after_seq: int = 0, action: str | None = None) -> list[AuditEntry]: ...
    def close(self) -> None: ...


class CalibrationRepository(Protocol):
    """Versioned gallery calibrations."""

    def active(self, model_id: str) -> DecisionSet | None: ...
    def adopt(self, model_id: str, decision_set: DecisionSet) -> DecisionSet: ...
    def revert(self, model_id: str) -> bool: ...
    def versions(self, model_id: str) -> list[str]: ...
    def backup(self, dest: Path) -> None: ...
    def close(self) -> None: ...


@dataclass
class Stores:
    """Everything stored, opened together and closed together."""

    location: GalleryLocation
    gallery: GalleryRepository
    keys: KeyRepository
    audit: AuditRepository
    calibrations: CalibrationRepository
    on_close: Callable[[], None]
    # Takes the model-switch leadership without waiting: its release, or None when another process leads.
    try_lead_switch: Callable[[], Callable[[], None] | None] = lambda: lambda: None

    @property
    def shared(self) -> bool:
        """Several processes may serve this gallery at once (they follow each other's changes)."""
        return self.location.backend == "postgresql"

    def close(self) -> None:
        """Close every store, then what they share."""
        for store in (self.gallery, self.keys, self.audit, self.calibrations):
            store.close()
        self.on_close()


def open_stores(settings: Settings) -> Stores:
    """Migrate the gallery database to the newest schema, then open its stores."""
    location = settings.gallery_location
    if location.backend == "sqlite":
        assert location.sqlite_path is not None
        return Stores(
            location=location,
            gallery=GalleryStore(location.sqlite_path),
            keys=KeyStore(settings.keys_path, settings.key_touch_interval_s),
            audit=AuditLog(settings.audit_path),
            calibrations=CalibrationStore(settings.calibrations_path),
            on_close=lambda: None,
        )
    # Imported here: psycopg is only needed when the gallery is in PostgreSQL.
    from service.pg_audit import PgAuditLog
    from service.pg_calibration_store import PgCalibrationStore
    from service.pg_gallery_store import PgGalleryStore
    from service.pg_keys import PgKeyStore
    from service.pg_pool import open_pool, try_advisory_lock
    from service.schema import upgrade_schema

    try:
        upgrade_schema(location)
    except Exception as exc:
        raise ConnectionError(
            f"cannot prepare the gallery database DPRIME_GALLERY_URL={location.redacted()}: {exc}"
        ) from exc
    pool = open_pool(location, settings.gallery_pool_size, settings.gallery_connect_timeout_s)
    logger.info("gallery in PostgreSQL at %s", location.redacted())
    return Stores(
        location=location,
        gallery=PgGalleryStore(pool),
        keys=PgKeyStore(pool, settings.key_touch_interval_s),
        audit=PgAuditLog(pool),
        calibrations=PgCalibrationStore(pool),
        on_close=pool.close,
        try_lead_switch=lambda: try_advisory_lock(pool, "dprime.model_switch"),
    )
