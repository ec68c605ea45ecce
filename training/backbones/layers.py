"""Layers the backbones share."""

from __future__ import annotations

import math

import torch
from torch import nn


class FastPReLU(nn.Module):
    """PReLU written as relu(x) + w * min(x, 0): identical outputs, but onnxruntime runs it about twice as fast
    as its PRelu op (which took 54 % of MobileFaceNet's time on these CPUs)."""

    def __init__(self, channels: int, init: float = 0.25) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-channel PReLU on (N, C, ...) inputs."""
        w = self.weight.view(1, -1, *([1] * (x.dim() - 2)))
        out: torch.Tensor = torch.relu(x) + w * torch.clamp(x, max=0.0)
        return out


class EmbeddingHead(nn.Module):
    """Linear map from backbone features to the raw embedding e (no normalisation: ||e|| is kappa).

    ``scale`` multiplies the initial weights and so sets the initial kappa range (the reference code's
    init_norm_multiplier; METHOD.md §3.1, §4.1).
    """

    def __init__(self, in_features: int, embedding_dim: int, scale: float = 1.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.linear = nn.Linear(in_features, embedding_dim)
        with torch.no_grad():
            self.linear.weight.mul_(scale)
            self.linear.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_features) -> (N, embedding_dim)."""
        out: torch.Tensor = self.linear(self.dropout(x))
        return out


class VmfHead(nn.Module):
    """e = kappa(x) * d(x) / ||d(x)||: the direction from a linear map, the certainty from its own small MLP.

    Separating the two lets a pretrained direction map (FaceNet's bottleneck) keep what it knows while kappa
    is learned, and keeps kappa's gradient from disturbing directions. kappa = softplus(.) + kappa_floor.
    """

    def __init__(
        self, in_features: int, embedding_dim: int, hidden: int = 64, kappa_init: float = 20.0, kappa_floor: float = 1.0
    ) -> None:
        super().__init__()
        if kappa_init <= kappa_floor:
            raise ValueError(f"kappa_init {kappa_init} must exceed kappa_floor {kappa_floor}")
        self.direction = nn.Linear(in_features, embedding_dim)
        last = nn.Linear(hidden, 1)
        self.kappa = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), last)
        self.kappa_floor = kappa_floor
        with torch.no_grad():
            # Start every face at kappa_init; training moves kappa from there.
            last.weight.zero_()
            y = kappa_init - kappa_floor
            last.bias.fill_(y + math.log(-math.expm1(-y)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_features) -> (N, embedding_dim) with norm kappa."""
        d = self.direction(x)
        kappa = nn.functional.softplus(self.kappa(x)) + self.kappa_floor
        out: torch.Tensor = kappa * d / d.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return out


class EmbeddingNet(nn.Module):
    """A trunk producing (N, F) features followed by the embedding head ('linear' or 'vmf')."""

    def __init__(
        self,
        trunk: nn.Module,
        feature_dim: int,
        embedding_dim: int,
        head_scale: float = 1.0,
        dropout: float = 0.0,
        head: str = "linear",
        kappa_init: float = 20.0,
    ) -> None:
        super().__init__()
        self.trunk = trunk
        if head == "linear":
            self.head: nn.Module = EmbeddingHead(feature_dim, embedding_dim, head_scale, dropout)
        elif head == "vmf":
            self.head = VmfHead(feature_dim, embedding_dim, kappa_init=kappa_init)
        else:
            raise ValueError(f"unknown head {head!r}; expected 'linear' or 'vmf'")
        self.embedding_dim = embedding_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> raw embeddings (N, D)."""
        out: torch.Tensor = self.head(self.trunk(images))
        return out
