"""Inception-ResNet-v1 (Szegedy et al., 2016) as FaceNet uses it: 160 x 160 input, 1792 pooled features.

Layer names follow FaceNet's TensorFlow scopes (Conv2d_1a_3x3 -> conv2d_1a, Repeat/block35_k -> repeat_1[k], ...)
so ``training.facenet_import`` can load the constants of the published graph. Padding 0 is TF's VALID;
3x3 convs with padding 1 (and 1x7/7x1, 1x3/3x1 with matching padding) are TF's SAME at stride 1.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvBNReLU(nn.Module):
    """conv (no bias) - BN (eps 1e-3, TF's value) - ReLU."""

    def __init__(
        self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1, padding: int | tuple[int, int] = 0
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """conv-BN-ReLU."""
        return torch.relu(self.bn(self.conv(x)))


class ResidualInception(nn.Module):
    """Parallel branches, concatenated, projected by a 1x1 conv with bias, scaled, added to the input."""

    def __init__(self, branches: list[nn.Module], concat: int, channels: int, scale: float, relu: bool = True) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.project = nn.Conv2d(concat, channels, 1)
        self.scale = scale
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x + scale * project(concat(branches(x)))."""
        out = x + self.scale * self.project(torch.cat([b(x) for b in self.branches], dim=1))
        return torch.relu(out) if self.relu else out


def block35(scale: float = 0.17) -> ResidualInception:
    """35 x 35 grid block (here 17 x 17 at 160 px input), 256 channels."""
    return ResidualInception(
        [
            ConvBNReLU(256, 32, 1),
            nn.Sequential(ConvBNReLU(256, 32, 1), ConvBNReLU(32, 32, 3, padding=1)),
            nn.Sequential(ConvBNReLU(256, 32, 1), ConvBNReLU(32, 32, 3, padding=1), ConvBNReLU(32, 32, 3, padding=1)),
        ],
        96,
        256,
        scale,
    )


def block17(scale: float = 0.10) -> ResidualInception:
    """17 x 17 grid block, 896 channels, factorised 7x7."""
    return ResidualInception(
        [
            ConvBNReLU(896, 128, 1),
            nn.Sequential(
                ConvBNReLU(896, 128, 1),
                ConvBNReLU(128, 128, (1, 7), padding=(0, 3)),
                ConvBNReLU(128, 128, (7, 1), padding=(3, 0)),
            ),
        ],
        256,
        896,
        scale,
    )


def block8(scale: float = 0.20, relu: bool = True) -> ResidualInception:
    """8 x 8 grid block, 1792 channels, factorised 3x3."""
    return ResidualInception(
        [
            ConvBNReLU(1792, 192, 1),
            nn.Sequential(
                ConvBNReLU(1792, 192, 1),
                ConvBNReLU(192, 192, (1, 3), padding=(0, 1)),
                ConvBNReLU(192, 192, (3, 1), padding=(1, 0)),
            ),
        ],
        384,
        1792,
        scale,
        relu,
    )


class Reduction(nn.Module):
    """Grid reduction: parallel stride-2 branches and a max pool, concatenated."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.pool = nn.MaxPool2d(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the branches and the pooled input."""
        return torch.cat([*(b(x) for b in self.branches), self.pool(x)], dim=1)


def mixed_6a() -> Reduction:
    """256 -> 896 channels."""
    return Reduction(
        [
            ConvBNReLU(256, 384, 3, 2),
            nn.Sequential(ConvBNReLU(256, 192, 1), ConvBNReLU(192, 192, 3, padding=1), ConvBNReLU(192, 256, 3, 2)),
        ]
    )


def mixed_7a() -> Reduction:
    """896 -> 1792 channels."""
    return Reduction(
        [
            nn.Sequential(ConvBNReLU(896, 256, 1), ConvBNReLU(256, 384, 3, 2)),
            nn.Sequential(ConvBNReLU(896, 256, 1), ConvBNReLU(256, 256, 3, 2)),
            nn.Sequential(ConvBNReLU(896, 256, 1), ConvBNReLU(256, 256, 3, padding=1), ConvBNReLU(256, 256, 3, 2)),
        ]
    )


class InceptionResNetV1Trunk(nn.Module):
    """(N, 3, 160, 160) -> (N, 1792) average-pooled features."""

    def __init__(self, input_size: int = 160) -> None:
        super().__init__()
        if input_size < 75:
            raise ValueError(f"Inception-ResNet-v1 needs inputs of at least 75 px, got {input_size}")
        self.conv2d_1a = ConvBNReLU(3, 32, 3, 2)
        self.conv2d_2a = ConvBNReLU(32, 32, 3)
        self.conv2d_2b = ConvBNReLU(32, 64, 3, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, 2)
        self.conv2d_3b = ConvBNReLU(64, 80, 1)
        self.conv2d_4a = ConvBNReLU(80, 192, 3)
        self.conv2d_4b = ConvBNReLU(192, 256, 3, 2)
        self.repeat_1 = nn.Sequential(*(block35() for _ in range(5)))
        self.mixed_6a = mixed_6a()
        self.repeat_2 = nn.Sequential(*(block17() for _ in range(10)))
        self.mixed_7a = mixed_7a()
        self.repeat_3 = nn.Sequential(*(block8() for _ in range(5)))
        self.block8 = block8(scale=1.0, relu=False)
        self.feature_dim = 1792

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled 1792-d features."""
        for layer in (
            self.conv2d_1a,
            self.conv2d_2a,
            self.conv2d_2b,
            self.maxpool_3a,
            self.conv2d_3b,
            self.conv2d_4a,
            self.conv2d_4b,
            self.repeat_1,
            self.mixed_6a,
            self.repeat_2,
            self.mixed_7a,
            self.repeat_3,
            self.block8,
        ):
            x = layer(x)
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)


def _mean_std(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel spatial mean and standard deviation, (N, C) each."""
    mean = x.mean(dim=(2, 3))
    var = (x * x).mean(dim=(2, 3)) - mean * mean
    return mean, var.clamp_min(0.0).sqrt()


class InceptionResNetV1TapsTrunk(InceptionResNetV1Trunk):
    """The same trunk (same weights), also returning pooled statistics of three earlier stages.

    Output (N, 1792 + 1536): the pooled features, then the mean and spread of conv2d_2b (64 + 64 channels, the
    finest grid, where blur, noise and blocking show), of repeat_1 (256 + 256) and the mean of repeat_2 (896).
    A head can read how much detail a face carries from these without the identity the final features hold.
    """

    tap_dim = 64 * 2 + 256 * 2 + 896

    def __init__(self, input_size: int = 160) -> None:
        super().__init__(input_size)
        self.direction_dim = self.feature_dim
        self.feature_dim = self.direction_dim + self.tap_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[pooled 1792-d features | tap statistics]."""
        x = self.conv2d_2b(self.conv2d_2a(self.conv2d_1a(x)))
        fine_mean, fine_std = _mean_std(x)
        x = self.repeat_1(self.conv2d_4b(self.conv2d_4a(self.conv2d_3b(self.maxpool_3a(x)))))
        mid_mean, mid_std = _mean_std(x)
        x = self.repeat_2(self.mixed_6a(x))
        deep_mean = x.mean(dim=(2, 3))
        x = self.block8(self.repeat_3(self.mixed_7a(x)))
        pooled = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return torch.cat([pooled, fine_mean, fine_std, mid_mean, mid_std, deep_mean], dim=1)
