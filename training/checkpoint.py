"""Checkpoints: model, loss, optimiser and schedule state, position, resolved config and provenance.

Everything stored is a tensor or a plain Python value, so checkpoints load with ``weights_only=True``.
"""

from __future__ import annotations

import logging
import os
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
FINAL = "final.pt"


def git_commit() -> str | None:
    """The repository's HEAD commit, if this runs from a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def package_versions(names: tuple[str, ...] = ("torch", "numpy", "onnx", "onnxruntime", "dprime")) -> dict[str, str]:
    """Installed versions of the packages that shape a model."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU with weights_only=True."""
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return state


def prune(directory: Path, keep_last: int) -> None:
    """Keep the newest ``keep_last`` step checkpoints (last.pt and final.pt are never pruned)."""
    steps = sorted(directory.glob("step_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    for old in steps[:-keep_last]:
        old.unlink(missing_ok=True)
