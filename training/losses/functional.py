"""Torch twins of facecore's vMF formulas (kept equal to them by tests) and small loss helpers.

Everything here runs in float32 or float64 and is autograd-friendly; callers under AMP cast to float32
first, because log C over millions of scores is unsafe in half precision.
"""

from __future__ import annotations

import math

import torch

_SMALL_KAPPA_D3 = 1e-3


def log_vmf_normalizer(kappa: torch.Tensor, dim: int) -> torch.Tensor:
    """log C_d(kappa) by the Debye expansion (d = 3 exactly), as facecore.vmf.log_vmf_normalizer."""
    if dim < 3:
        raise ValueError(f"vMF math needs dim >= 3, got dim={dim}")
    if dim == 3:
        safe = kappa.clamp_min(_SMALL_KAPPA_D3)
        large = torch.log(safe) - safe - torch.log1p(-torch.exp(-2.0 * safe)) + math.log(2.0)
        small = -(kappa**2) / 6.0 + kappa**4 / 180.0
        return torch.where(kappa < _SMALL_KAPPA_D3, small, large) - math.log(4.0 * math.pi)
    nu = dim / 2.0 - 1.0
    s = torch.sqrt(nu * nu + kappa * kappa)
    t = nu / s
    t2 = t * t
    u1 = t * (3.0 - 5.0 * t2) / 24.0
    u2 = t2 * (81.0 - 462.0 * t2 + 385.0 * t2 * t2) / 1152.0
    u3 = t * t2 * (30375.0 - 369603.0 * t2 + 765765.0 * t2 * t2 - 425425.0 * t2 * t2 * t2) / 414720.0
    series = 1.0 + u1 / nu + u2 / nu**2 + u3 / nu**3
    return (
        -(dim / 2.0) * math.log(2.0 * math.pi)
        - s
        + nu * torch.log(nu + s)
        + 0.5 * torch.log(2.0 * math.pi * s)
        - torch.log(series)
    )


def mean_resultant_length(kappa: torch.Tensor, dim: int) -> torch.Tensor:
    """A_d(kappa) = -d/dkappa log C_d(kappa), through autograd of the same formula."""
    with torch.enable_grad():
        k = kappa.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(log_vmf_normalizer(k, dim).sum(), k)
    return -grad


def vmf_resultant(kappa_x: torch.Tensor, kappa_c: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """||kappa_x mu_x + kappa_c p_c|| for every (image, class): kappa_x (B,), kappa_c (C,), cos (B, C)."""
    kx = kappa_x[:, None]
    kc = kappa_c[None, :]
    return torch.sqrt((kx * kx + kc * kc + 2.0 * kx * kc * cos).clamp_min(1e-12))
