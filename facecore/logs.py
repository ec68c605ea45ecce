"""One logging set-up for every entry point: a single line format on stderr, optionally a file too."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str = "INFO", log_file: Path | None = None) -> None:
    """Configure the root logger (idempotent: handlers from an earlier call are replaced, others kept)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_dprime", False):
            root.removeHandler(handler)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._dprime = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
