"""The model registry: ``models/<model_id>/`` directories plus an ``active.json`` pointer with history.

The pointer is rewritten atomically (write, fsync, rename), so a reader sees the old active model or the
new one. Every activation pushes the previous model onto the history, which ``rollback`` pops.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from facecore.constants import ACTIVE_FILENAME, MANIFEST_FILENAME
from facecore.errors import ManifestError, RegistryError
from facecore.fileio import atomic_write_text
from facecore.manifest import MODEL_ID_PATTERN, ModelManifest, load_manifest


class ActivePointer(BaseModel):
    """Contents of active.json."""

    model_config = ConfigDict(extra="forbid")

    active: str
    history: list[str] = Field(default_factory=list, description="previously active ids, oldest first")
    updated: datetime = Field(default_factory=lambda: datetime.now(UTC))


class ModelSummary(BaseModel):
    """One line of ``dprime models list``."""

    model_id: str
    created: datetime
    backbone: str
    loss: str
    embedding_dim: int
    calibrated: bool
    active: bool


class ModelRegistry:
    """Reads and switches the models under one directory."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = Path(models_dir)

    @property
    def pointer_path(self) -> Path:
        """Path of active.json."""
        return self.models_dir / ACTIVE_FILENAME

    def model_dir(self, model_id: str) -> Path:
        """Directory of one model; refuses ids that could escape the models directory."""
        if not re.match(MODEL_ID_PATTERN, model_id):
            raise RegistryError(f"invalid model id {model_id!r}: expected letters, digits, '.', '_' or '-'")
        return self.models_dir / model_id

    def model_ids(self) -> list[str]:
        """Ids of every directory holding a manifest, sorted."""
        if not self.models_dir.is_dir():
            return []
        return sorted(p.name for p in self.models_dir.iterdir() if (p / MANIFEST_FILENAME).is_file())

    def load(self, model_id: str, verify_checksum: bool = True) -> ModelManifest:
        """The manifest of one model (checksum verified by default)."""
        model_dir = self.model_dir(model_id)
        if not (model_dir / MANIFEST_FILENAME).is_file():
            raise RegistryError(f"no model {model_id!r} in {self.models_dir}; have {self.model_ids()}")
        return load_manifest(model_dir, verify_checksum=verify_checksum)

    def pointer(self) -> ActivePointer | None:
        """The active pointer, or None when nothing was ever activated."""
        try:
            return ActivePointer.model_validate_json(self.pointer_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (ValidationError, json.JSONDecodeError) as exc:
            raise RegistryError(f"{self.pointer_path} is corrupt: {exc}") from exc

    def active_id(self) -> str | None:
        """Id of the active model, or None."""
        ptr = self.pointer()
        return ptr.active if ptr else None

    def list(self) -> list[ModelSummary]:
        """Every model with its headline facts (manifests read without hashing the ONNX files)."""
        active = self.active_id()
        out = []
        for model_id in self.model_ids():
            m = self.load(model_id, verify_checksum=False)
            out.append(
                ModelSummary(
                    model_id=m.model_id,
                    created=m.created,
                    backbone=m.backbone,
                    loss=m.loss,
                    embedding_dim=m.embedding_dim,
                    calibrated=m.calibration is not None,
                    active=m.model_id == active,
                )
            )
        return out

    def activate(self, model_id: str) -> ActivePointer:
        """Make model_id active after checking its manifest and checksum; the previous one joins the history."""
        manifest = self.load(model_id, verify_checksum=True)
        if manifest.model_id != model_id:
            raise ManifestError(f"directory {model_id!r} holds a manifest for {manifest.model_id!r}")
        current = self.pointer()
        history = list(current.history) if current else []
        if current and current.active != model_id:
            history.append(current.active)
        new = ActivePointer(active=model_id, history=history)
        atomic_write_text(self.pointer_path, new.model_dump_json(indent=2) + "\n")
        return new

    def rollback(self) -> ActivePointer:
        """Re-activate the previously active model."""
        current = self.pointer()
        if current is None or not current.history:
            raise RegistryError("nothing to roll back to: no previously active model is recorded")
        previous = current.history[-1]
        self.load(previous, verify_checksum=True)
        new = ActivePointer(active=previous, history=current.history[:-1])
        atomic_write_text(self.pointer_path, new.model_dump_json(indent=2) + "\n")
        return new
