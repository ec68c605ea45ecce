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
    init_norm_multiplier; κ and the vMF term: docs/method.md, "Training: PD-Loss and the vMF term").
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
            last.bias.fill_(_softplus_inverse(kappa_init - kappa_floor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_features) -> (N, embedding_dim) with norm kappa."""
        d = self.direction(x)
        kappa = nn.functional.softplus(self.kappa(x)) + self.kappa_floor
        out: torch.Tensor = kappa * d / d.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return out


def _softplus_inverse(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class AgreementKappa(nn.Module):
    """kappa = softplus(gain * a + bias) + kappa_floor with a = -log(1 - R) and gain kept positive.

    R is the length of the mean of a face's view directions (1 when its views agree exactly), so kappa
    always ranks faces by how well their views agree; training (the EL term) fits only the scale.
    """

    def __init__(self, kappa_init: float, kappa_floor: float, agreement_init: float) -> None:
        super().__init__()
        if kappa_init <= kappa_floor:
            raise ValueError(f"kappa_init {kappa_init} must exceed kappa_floor {kappa_floor}")
        self.kappa_floor = kappa_floor
        # Start with gain 1 and kappa = kappa_init at a typical agreement.
        self.gain = nn.Parameter(torch.tensor(_softplus_inverse(1.0)))
        self.bias = nn.Parameter(torch.tensor(_softplus_inverse(kappa_init - kappa_floor) - agreement_init))

    def forward(self, resultant: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
        """(N, 1) resultant lengths R and their gaps 1 - R (computed stably by the caller) -> (N, 1) kappa."""
        agreement = -torch.log(gap.clamp_min(1e-12))
        gain = nn.functional.softplus(self.gain)
        out: torch.Tensor = nn.functional.softplus(gain * agreement + self.bias) + self.kappa_floor
        return out


def resultant_and_gap(units: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, V, D) unit vectors -> their mean (N, D), its length R (N, 1) and 1 - R (N, 1).

    1 - R is taken from the views' spread, 1 - R^2 = mean_i |u_i - mean|^2, because subtracting R from 1 in
    float32 loses most digits when the views nearly agree (R ~ 0.995 is typical), which -log(1 - R) magnifies.
    """
    mean = units.mean(dim=1)
    resultant = mean.norm(dim=1, keepdim=True)
    spread = (units - mean[:, None, :]).pow(2).sum(dim=-1).mean(dim=1, keepdim=True)
    return mean, resultant, spread / (1.0 + resultant)


class MirrorVmfHead(nn.Module):
    """A face and its mirror, one embedding: the mean of their unit directions, with kappa from their agreement.

    Both views show one identity, so how far apart a direction map puts them is a per-image measure of how
    reliably it reads that face. On held-out pairs this agreement ranked verification errors where a kappa MLP
    on the features, trained by EL on a few hundred identities, did not (it learns the training identities,
    whose images it classifies perfectly). Input (N, 2, F): features of each face and of its mirror.
    """

    views = 2

    def __init__(
        self,
        in_features: int,
        embedding_dim: int,
        kappa_init: float = 20.0,
        kappa_floor: float = 1.0,
        agreement_init: float = 5.0,
    ) -> None:
        super().__init__()
        self.direction = nn.Linear(in_features, embedding_dim)
        self.kappa = AgreementKappa(kappa_init, kappa_floor, agreement_init)

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        """(N, V, in_features) -> (N, embedding_dim) with norm kappa."""
        units = nn.functional.normalize(self.direction(views), dim=-1)
        mean, resultant, gap = resultant_and_gap(units)
        out: torch.Tensor = self.kappa(resultant, gap) * mean / resultant.clamp_min(1e-12)
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
        elif head == "vmf_mirror":
            self.head = MirrorVmfHead(feature_dim, embedding_dim, kappa_init=kappa_init)
        else:
            raise ValueError(f"unknown head {head!r}; expected 'linear', 'vmf' or 'vmf_mirror'")
        self.embedding_dim = embedding_dim

    @property
    def views(self) -> int:
        """How many views of each face the head takes (2: the face and its mirror)."""
        return int(getattr(self.head, "views", 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> raw embeddings (N, D)."""
        if self.views == 1:
            out: torch.Tensor = self.head(self.trunk(images))
            return out
        n = images.shape[0]
        features = self.trunk(torch.cat([images, torch.flip(images, dims=[3])]))
        views: torch.Tensor = self.head(torch.stack([features[:n], features[n:]], dim=1))
        return views
