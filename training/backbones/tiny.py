"""A small real CNN for CPU smoke runs and tests (any input size >= 16)."""

from __future__ import annotations

import torch
from torch import nn


class TinyTrunk(nn.Module):
    """Four strided conv-BN-ReLU layers and global average pooling: (N, 3, H, W) -> (N, 128)."""

    def __init__(self, input_size: int = 112, width: int = 32) -> None:
        super().__init__()
        del input_size  # global pooling makes the trunk size-agnostic
        chans = (3, width, width * 2, width * 4, width * 4)
        layers: list[nn.Module] = []
        for cin, cout in zip(chans, chans[1:], strict=False):
            layers += [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1))
        self.feature_dim = chans[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 4 * width) features."""
        return torch.flatten(self.body(x), 1)


class TinyTapsTrunk(TinyTrunk):
    """TinyTrunk also returning the spatial mean and spread of its first layer: (N, 128 + 64) for width 32.

    The small stand-in of a ``..._taps`` trunk, so tests can train and export an evidence head in seconds.
    """

    def __init__(self, input_size: int = 112, width: int = 32) -> None:
        super().__init__(input_size, width)
        self.direction_dim = self.feature_dim
        self.feature_dim = self.direction_dim + 2 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[pooled features | first-layer mean | first-layer spread]."""
        first = self.body[2](self.body[1](self.body[0](x)))
        mean = first.mean(dim=(2, 3))
        spread = ((first * first).mean(dim=(2, 3)) - mean * mean).clamp_min(0.0).sqrt()
        return torch.cat([torch.flatten(self.body[3:](first), 1), mean, spread], dim=1)
