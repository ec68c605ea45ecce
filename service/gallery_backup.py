"""Online backup and offline restore of the gallery (``dprime gallery backup|restore``).

A backup is a directory holding a consistent copy of each gallery database, taken with SQLite's online
backup API while the service keeps serving and writing, and a ``backup.json`` describing it. Restore needs the
service stopped (it holds the data directory's lock while running): it checks each copy's integrity, then
replaces the files whole. API keys and the audit trail are not part of a gallery backup: keys are credentials,
and the trail must not be rewound.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from facecore.errors import DprimeError
from facecore.fileio import atomic_write_text
from service.data_lock import DataDirLock
from service.index_snapshot import INDEX_DIR
from service.sqlite_conn import integrity_ok, online_backup

logger = logging.getLogger(__name__)

GALLERY_FILES = ("gallery.sqlite3", "calibrations.sqlite3")
INFO_NAME = "backup.json"


class BackupError(DprimeError):
    """A backup cannot be taken or restored."""


class BackupInfo(BaseModel):
    """What a backup holds."""

    created: datetime
    identities: int
    faces: int
    pinned_model: str | None
    files: list[str]


def _describe(gallery: Path, files: list[str]) -> BackupInfo:
    conn = sqlite3.connect(gallery)
    try:
        n_ids = int(conn.execute("SELECT COUNT(*) FROM identities").fetchone()[0])
        n_faces = int(conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0])
        row = conn.execute("SELECT value FROM meta WHERE key = 'model_id'").fetchone()
    finally:
        conn.close()
    return BackupInfo(
        created=datetime.now(UTC), identities=n_ids, faces=n_faces, pinned_model=row[0] if row else None, files=files
    )


def backup(data_dir: Path, dest: Path) -> BackupInfo:
    """Copy the gallery of data_dir into the directory dest (works while the service runs and writes)."""
    if not (data_dir / GALLERY_FILES[0]).is_file():
        raise BackupError(f"no gallery at {data_dir / GALLERY_FILES[0]}: is DPRIME_DATA_DIR right?")
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} exists and is not empty; give a new directory")
    files = [name for name in GALLERY_FILES if (data_dir / name).is_file()]
    for name in files:
        online_backup(data_dir / name, dest / name)
    info = _describe(dest / GALLERY_FILES[0], files)
    atomic_write_text(dest / INFO_NAME, info.model_dump_json(indent=2) + "\n")
    logger.info("backed up %d identities / %d faces to %s", info.identities, info.faces, dest)
    return info


def restore(source: Path, data_dir: Path) -> BackupInfo:
    """Replace data_dir's gallery by the backup in source; refused while a service uses data_dir."""
    info_path = source / INFO_NAME
    if not info_path.is_file():
        raise BackupError(f"{source} is not a dprime gallery backup (no {INFO_NAME})")
    info = BackupInfo.model_validate_json(info_path.read_text(encoding="utf-8"))
    for name in info.files:
        if not (source / name).is_file() or not integrity_ok(source / name):
            raise BackupError(f"{source / name} is missing or fails SQLite's integrity check; nothing was restored")
    with DataDirLock(data_dir, "restoring a gallery backup"):
        for name in GALLERY_FILES:
            target = data_dir / name
            for leftover in (target.with_name(name + "-wal"), target.with_name(name + "-shm")):
                leftover.unlink(missing_ok=True)
            if name in info.files:
                online_backup(source / name, target)
            else:
                target.unlink(missing_ok=True)
        # Search graphs kept on disk describe the gallery being replaced: the next start builds them anew.
        shutil.rmtree(data_dir / INDEX_DIR, ignore_errors=True)
    logger.info("restored %d identities / %d faces from %s into %s", info.identities, info.faces, source, data_dir)
    return info
