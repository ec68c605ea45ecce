"""One logging set-up for every entry point: one line per record on stderr (text or JSON), optionally a file too."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the record's ``fields`` extra, and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str = "INFO", log_file: Path | None = None, json_lines: bool = False) -> None:
    """Configure the root logger (idempotent: handlers from an earlier call are replaced, others kept)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_dprime", False):
            root.removeHandler(handler)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    formatter = JsonFormatter() if json_lines else logging.Formatter(_FORMAT)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler._dprime = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
