"""What every embedding loss returns and offers the trainer; the proxy bank that proxy losses share."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class LossOutput:
    """The scalar to minimise and detached statistics for logging (d', genuine/impostor means, ...)."""

    loss: torch.Tensor
    stats: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LrMultipliers:
    """Learning-rate multipliers of the loss's own parameter groups (``optim.*`` in docs/training.md#train)."""

    proxy: float = 1.0
    kappa: float = 1.0
    temperature: float = 1.0


class EmbeddingLoss(nn.Module):
    """Base of every loss: forward(raw embeddings (B, D), labels (B,)) -> LossOutput, always in float32."""

    name = "base"
    uses_proxies = False

    def __init__(self, num_classes: int, embedding_dim: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.epoch = 0.0

    def set_epoch(self, epoch: float) -> None:
        """Fractional epoch, for losses whose terms ramp in."""
        self.epoch = epoch

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        """The loss on float32 embeddings; subclasses implement this."""
        raise NotImplementedError

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        """Compute in float32 (float64 stays float64) with autocast off, whatever precision the backbone ran in."""
        device_type = embeddings.device.type
        dtype = torch.float64 if embeddings.dtype == torch.float64 else torch.float32
        with torch.autocast(device_type=device_type, enabled=False):
            return self.compute(embeddings.to(dtype), labels)

    def param_groups(self, lr: float, mults: LrMultipliers) -> list[dict[str, object]]:
        """Optimizer groups for this loss's parameters: none of them gets weight decay."""
        params = [p for p in self.parameters() if p.requires_grad]
        return [{"params": params, "lr": lr * mults.proxy, "weight_decay": 0.0, "name": "loss"}] if params else []

    @torch.no_grad()
    def init_proxies(self, class_means: torch.Tensor) -> None:
        """Warm-start proxies from class-mean directions (C, D); losses without proxies ignore it."""


class ProxyBank(nn.Module):
    """One learnable direction per class, P (C, D); only directions are used (rows are normalised on use)."""

    def __init__(self, num_classes: int, embedding_dim: int) -> None:
        super().__init__()
        weight = torch.empty(num_classes, embedding_dim)
        nn.init.normal_(weight)
        self.weight = nn.Parameter(weight)

    def directions(self) -> torch.Tensor:
        """Unit proxies (C, D)."""
        return nn.functional.normalize(self.weight, dim=1)

    @torch.no_grad()
    def set_directions(self, means: torch.Tensor) -> None:
        """Overwrite with the given (normalised) directions."""
        if means.shape != self.weight.shape:
            raise ValueError(f"class means have shape {tuple(means.shape)}; proxies are {tuple(self.weight.shape)}")
        self.weight.copy_(nn.functional.normalize(means.float(), dim=1))
