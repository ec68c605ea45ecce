"""IResNet-18/50/100 (the ArcFace/InsightFace variant of ResNet) for 112 x 112 faces, pure torch."""

from __future__ import annotations

import torch
from torch import nn

from training.backbones.layers import FastPReLU


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


class IBasicBlock(nn.Module):
    """BN - conv - BN - PReLU - conv - BN, plus the (projected) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin, eps=1e-5),
            _conv3x3(cin, cout),
            nn.BatchNorm2d(cout, eps=1e-5),
            FastPReLU(cout),
            _conv3x3(cout, cout, stride),
            nn.BatchNorm2d(cout, eps=1e-5),
        )
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block."""
        out: torch.Tensor = self.body(x) + self.downsample(x)
        return out


class IResNetTrunk(nn.Module):
    """Stem, four stages, final BN and flatten: (N, 3, 112, 112) -> (N, 512 * 7 * 7)."""

    def __init__(self, layers: tuple[int, int, int, int], input_size: int = 112) -> None:
        super().__init__()
        if input_size % 16:
            raise ValueError(f"IResNet needs an input size divisible by 16, got {input_size}")
        widths = (64, 128, 256, 512)
        self.stem = nn.Sequential(_conv3x3(3, 64), nn.BatchNorm2d(64, eps=1e-5), FastPReLU(64))
        stages = []
        cin = 64
        for n, cout in zip(layers, widths, strict=True):
            blocks = [IBasicBlock(cin, cout, 2)] + [IBasicBlock(cout, cout, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(512, eps=1e-5)
        self.feature_dim = 512 * (input_size // 16) ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Flattened final feature map."""
        return torch.flatten(self.bn(self.stages(self.stem(x))), 1)


IRESNET_LAYERS = {"iresnet18": (2, 2, 2, 2), "iresnet50": (3, 4, 14, 3), "iresnet100": (3, 13, 30, 3)}
