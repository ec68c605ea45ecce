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
