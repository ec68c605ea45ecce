"""One service per data directory: an exclusive lock on ``DATA_DIR/service.lock`` while it runs.

Two services on one gallery would each keep their own in-memory index of it and drift apart; a restore under
a running service would replace the files its connections have open. The lock is an flock, so the kernel
drops it when the process dies, even by SIGKILL: a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from facecore.errors import DprimeError

LOCK_NAME = "service.lock"


class DataDirBusyError(DprimeError):
    """Another process holds the data directory."""


class DataDirLock:
    """Hold the data directory exclusively (non-blocking: refuse at once when another process has it)."""

    def __init__(self, data_dir: Path, purpose: str) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self.purpose = purpose
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise DataDirBusyError naming who has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise DataDirBusyError(f"{self.path.parent} is in use by {holder}; stop it before {self.purpose}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({self.purpose})".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
