"""MobileFaceNet (Chen et al., 2018): depthwise bottlenecks and a global depthwise conv, ~1M parameters."""

from __future__ import annotations

import torch
from torch import nn

from training.backbones.layers import FastPReLU


class ConvBN(nn.Sequential):
    """conv - BN, optionally followed by PReLU."""

    def __init__(self, cin: int, cout: int, k: int, s: int, p: int, groups: int = 1, act: bool = True) -> None:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, p, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        if act:
            layers.append(FastPReLU(cout))
        super().__init__(*layers)


class Bottleneck(nn.Module):
    """1x1 expand - 3x3 depthwise - 1x1 linear project, residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.residual = stride == 1 and cin == cout
        self.body = nn.Sequential(
            ConvBN(cin, hidden, 1, 1, 0),
            ConvBN(hidden, hidden, 3, stride, 1, groups=hidden),
            ConvBN(hidden, cout, 1, 1, 0, act=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Bottleneck block."""
        y: torch.Tensor = self.body(x)
        return x + y if self.residual else y


# (expansion, channels, repeats, stride) per stage, from the paper's Table 1.
_STAGES = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


class MobileFaceNetTrunk(nn.Module):
    """(N, 3, 112, 112) -> (N, 512) through a 7x7 global depthwise conv."""

    def __init__(self, input_size: int = 112) -> None:
        super().__init__()
        if input_size % 16:
            raise ValueError(f"MobileFaceNet needs an input size divisible by 16, got {input_size}")
        layers: list[nn.Module] = [ConvBN(3, 64, 3, 2, 1), ConvBN(64, 64, 3, 1, 1, groups=64)]
        cin = 64
        for t, c, n, s in _STAGES:
            for i in range(n):
                layers.append(Bottleneck(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(ConvBN(128, 512, 1, 1, 0))
        side = input_size // 16
        layers.append(ConvBN(512, 512, side, 1, 0, groups=512, act=False))  # global depthwise conv
        self.body = nn.Sequential(*layers)
        self.feature_dim = 512

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 512) features."""
        return torch.flatten(self.body(x), 1)
