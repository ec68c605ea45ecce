"""Loss registry: ``create_loss(name, num_classes, embedding_dim, **params)``; unknown names list the known ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from training.losses.base import EmbeddingLoss, LossOutput, LrMultipliers

_REGISTRY: dict[str, Callable[..., EmbeddingLoss]] = {}


def register_loss(name: str, factory: Callable[..., EmbeddingLoss]) -> None:
    """Add a loss factory under a stable name (recorded in manifests)."""
    if name in _REGISTRY:
        raise ValueError(f"loss {name!r} is already registered")
    _REGISTRY[name] = factory


def list_losses() -> list[str]:
    """Registered loss names."""
    _register_builtins()
    return sorted(_REGISTRY)


def create_loss(name: str, num_classes: int, embedding_dim: int, **params: Any) -> EmbeddingLoss:
    """Build a registered loss."""
    _register_builtins()
    if name not in _REGISTRY:
        raise ValueError(f"unknown loss {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](num_classes, embedding_dim, **params)


def _register_builtins() -> None:
    if _REGISTRY:
        return
    from functools import partial

    from training.losses.baselines import _PML, PMLLoss
    from training.losses.d_loss import DLoss
    from training.losses.pd_loss import PDLoss
    from training.losses.pd_vmf import PDVmfLoss
    from training.losses.vmf import NivMFLoss, VmfELLoss

    for cls in (PDLoss, DLoss, VmfELLoss, NivMFLoss, PDVmfLoss):
        register_loss(cls.name, cls)
    for kind in _PML:
        register_loss(kind, partial(PMLLoss, kind=kind))


__all__ = ["EmbeddingLoss", "LossOutput", "LrMultipliers", "create_loss", "list_losses", "register_loss"]
