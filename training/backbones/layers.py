"""Layers the backbones share."""

from __future__ import annotations

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


class EmbeddingNet(nn.Module):
    """A trunk producing (N, F) features followed by the embedding head."""

    def __init__(
        self, trunk: nn.Module, feature_dim: int, embedding_dim: int, head_scale: float = 1.0, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = EmbeddingHead(feature_dim, embedding_dim, head_scale, dropout)
        self.embedding_dim = embedding_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> raw embeddings (N, D)."""
        out: torch.Tensor = self.head(self.trunk(images))
        return out
