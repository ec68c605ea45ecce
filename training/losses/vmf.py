"""Probabilistic proxy losses: images are vMF(mu = e/||e||, kappa = ||e||)
(docs/method.md#a-face-is-a-direction-and-a-certainty).

``vmf_el``: closed-form expected-likelihood vMF proxies (docs/method.md#training-pd-loss-and-the-vmf-term).
Each class has a direction and an isotropic concentration kappa_c = softplus(rho_c) + kappa_floor; the logit
of class c is [log C(kappa_c) - log C(||kappa_x mu_x + kappa_c p_c||)] / T (the per-image log C(kappa_x)
cancels in the softmax). It is the term that gives kappa a training signal.

``nivmf``: per-dimension proxy concentrations K_c with the exact-Jacobian density, evaluated
with matmuls only: ||K_c z||^2 = z^2 . K_c^2 and (K_c z).(K_c p_c) = z . (K_c^2 * p_c).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from training.losses.base import EmbeddingLoss, LossOutput, LrMultipliers, ProxyBank
from training.losses.functional import log_vmf_normalizer, vmf_resultant


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class ClassConcentration(nn.Module):
    """kappa_c = softplus(rho_c) + floor, one per class."""

    def __init__(self, num_classes: int, init: float, floor: float) -> None:
        super().__init__()
        if init <= floor:
            raise ValueError(f"kappa init {init} must exceed the floor {floor}")
        self.floor = floor
        self.rho = nn.Parameter(torch.full((num_classes,), _inverse_softplus(init - floor)))

    def forward(self) -> torch.Tensor:
        """(C,) concentrations."""
        return nn.functional.softplus(self.rho) + self.floor


class Temperature(nn.Module):
    """T = exp(log_t) so T stays positive (the reference code's T had no such constraint)."""

    def __init__(self, init: float, learnable: bool = True) -> None:
        super().__init__()
        self.log_t = nn.Parameter(torch.tensor(math.log(init)), requires_grad=learnable)

    def forward(self) -> torch.Tensor:
        """The temperature."""
        return torch.exp(self.log_t)


def el_logits(
    embeddings: torch.Tensor,
    directions: torch.Tensor,
    kappa_c: torch.Tensor,
    temperature: torch.Tensor,
    cos: torch.Tensor | None = None,
) -> torch.Tensor:
    """Closed-form EL-vMF logits (B, C) for raw embeddings (B, D) and unit proxies (C, D)."""
    dim = embeddings.shape[1]
    kappa_x = embeddings.norm(dim=1).clamp_min(1e-6)
    if cos is None:
        cos = (embeddings / kappa_x[:, None]) @ directions.T
    r = vmf_resultant(kappa_x, kappa_c, cos)
    return (log_vmf_normalizer(kappa_c, dim)[None, :] - log_vmf_normalizer(r, dim)) / temperature


def vmf_stats(embeddings: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """kappa percentiles and proxy accuracy of a batch."""
    kappa = embeddings.detach().norm(dim=1)
    q = torch.quantile(kappa, torch.tensor([0.1, 0.5, 0.9], device=kappa.device, dtype=kappa.dtype))
    acc = (logits.detach().argmax(dim=1) == labels).float().mean()
    return {"kappa_p10": float(q[0]), "kappa_p50": float(q[1]), "kappa_p90": float(q[2]), "proxy_acc": float(acc)}


class VmfELLoss(EmbeddingLoss):
    """Softmax cross-entropy over closed-form expected-likelihood vMF proxies."""

    name = "vmf_el"
    uses_proxies = True

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        kappa_init: float = 16.0,
        kappa_floor: float = 1.0,
        temperature: float = 0.05,
        learn_temperature: bool = True,
    ) -> None:
        super().__init__(num_classes, embedding_dim)
        self.proxies = ProxyBank(num_classes, embedding_dim)
        self.kappa = ClassConcentration(num_classes, kappa_init, kappa_floor)
        self.temperature = Temperature(temperature, learn_temperature)

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        """CE over EL-vMF logits."""
        logits = el_logits(embeddings, self.proxies.directions(), self.kappa(), self.temperature())
        loss = nn.functional.cross_entropy(logits, labels)
        return LossOutput(
            loss, vmf_stats(embeddings, logits, labels) | {"temperature": float(self.temperature().detach())}
        )

    def param_groups(self, lr: float, mults: LrMultipliers) -> list[dict[str, object]]:
        """Proxies, concentrations and temperature each with their own multiplier, no weight decay."""
        return _vmf_groups(self.proxies, self.kappa, self.temperature, lr, mults)

    @torch.no_grad()
    def init_proxies(self, class_means: torch.Tensor) -> None:
        """Class-mean warm start."""
        self.proxies.set_directions(class_means)


def _vmf_groups(
    proxies: nn.Module, kappa: nn.Module, temperature: nn.Module, lr: float, mults: LrMultipliers
) -> list[dict[str, object]]:
    groups: list[dict[str, object]] = [
        {"params": list(proxies.parameters()), "lr": lr * mults.proxy, "weight_decay": 0.0, "name": "proxy"},
        {"params": list(kappa.parameters()), "lr": lr * mults.kappa, "weight_decay": 0.0, "name": "kappa"},
    ]
    temps = [p for p in temperature.parameters() if p.requires_grad]
    if temps:
        groups.append({"params": temps, "lr": lr * mults.temperature, "weight_decay": 0.0, "name": "temperature"})
    return groups


def nivmf_log_density(z: torch.Tensor, directions: torch.Tensor, concentrations: torch.Tensor) -> torch.Tensor:
    """Exact-Jacobian nivMF log density of unit points z (N, D) under each class (C, D), as (N, C).

    log C(||K p||) + ||K p|| cos(K z, K p) + sum_d log k_d - D log ||K z||: the vMF(Kp/||Kp||, ||Kp||)
    pushed through z -> K z / ||K z||, so it integrates to 1; with K = kappa I it is exactly vMF(p, kappa).
    """
    dim = z.shape[1]
    k2 = concentrations**2
    kp_norm = torch.sqrt((k2 * directions**2).sum(dim=1)).clamp_min(1e-12)  # (C,)
    kz_norm = torch.sqrt((z * z) @ k2.T).clamp_min(1e-12)  # (N, C)
    dot = z @ (k2 * directions).T  # (K z).(K p), (N, C)
    return (
        log_vmf_normalizer(kp_norm, dim)[None, :]
        + dot / kz_norm
        + torch.log(concentrations).sum(dim=1)[None, :]
        - dim * torch.log(kz_norm)
    )


def el_nivmf_logits(
    embeddings: torch.Tensor, directions: torch.Tensor, concentrations: torch.Tensor, temperature: torch.Tensor
) -> torch.Tensor:
    """Closed-form expected likelihood of the reference code's EL-nivMF, as (B, C) logits.

    log EL_T(x, c) = a_c/T + log C(kappa_x) - log C(||kappa_x mu_x + b_c/T||) with b_c = K_c p_c and
    a_c = log C(||b_c||) + sum_d log k_cd - log ||b_c||: exact where the code draws a few Monte Carlo samples.
    """
    dim = embeddings.shape[1]
    kappa_x = embeddings.norm(dim=1).clamp_min(1e-6)
    b = concentrations * directions  # (C, D)
    b_norm = b.norm(dim=1).clamp_min(1e-12)
    a = log_vmf_normalizer(b_norm, dim) + torch.log(concentrations).sum(dim=1) - torch.log(b_norm)
    cross = embeddings @ b.T  # kappa_x mu_x . b_c
    r2 = kappa_x[:, None] ** 2 + (b_norm[None, :] / temperature) ** 2 + 2.0 * cross / temperature
    r = torch.sqrt(r2.clamp_min(1e-12))
    return a[None, :] / temperature + log_vmf_normalizer(kappa_x, dim)[:, None] - log_vmf_normalizer(r, dim)


class NivMFLoss(EmbeddingLoss):
    """Softmax CE over nivMF proxies with per-dimension concentrations.

    form='exact' scores the image direction by the exact-Jacobian density (a distribution-to-point logit);
    form='el' uses the closed-form expected likelihood of the reference code, which also uses kappa_x.
    """

    name = "nivmf"
    uses_proxies = True

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        concentration: float = 10.0,
        floor: float = 0.1,
        temperature: float = 1.0,
        learn_temperature: bool = True,
        form: str = "exact",
    ) -> None:
        super().__init__(num_classes, embedding_dim)
        if form not in ("exact", "el"):
            raise ValueError(f"nivmf form must be 'exact' or 'el', got {form!r}")
        self.form = form
        self.proxies = ProxyBank(num_classes, embedding_dim)
        self.floor = floor
        self.rho = nn.Parameter(torch.full((num_classes, embedding_dim), _inverse_softplus(concentration - floor)))
        self.temperature = Temperature(temperature, learn_temperature)

    def concentrations(self) -> torch.Tensor:
        """Per-class, per-dimension concentrations K (C, D), each >= floor."""
        return nn.functional.softplus(self.rho) + self.floor

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        """CE over nivMF logits."""
        directions, k = self.proxies.directions(), self.concentrations()
        if self.form == "el":
            logits = el_nivmf_logits(embeddings, directions, k, self.temperature())
        else:
            z = nn.functional.normalize(embeddings, dim=1)
            logits = nivmf_log_density(z, directions, k) / self.temperature()
        loss = nn.functional.cross_entropy(logits, labels)
        return LossOutput(loss, vmf_stats(embeddings, logits, labels))

    def param_groups(self, lr: float, mults: LrMultipliers) -> list[dict[str, object]]:
        """Proxies, concentrations and temperature with their own multipliers."""
        groups: list[dict[str, object]] = [
            {"params": list(self.proxies.parameters()), "lr": lr * mults.proxy, "weight_decay": 0.0, "name": "proxy"},
            {"params": [self.rho], "lr": lr * mults.kappa, "weight_decay": 0.0, "name": "kappa"},
        ]
        if self.temperature.log_t.requires_grad:
            groups.append(
                {
                    "params": [self.temperature.log_t],
                    "lr": lr * mults.temperature,
                    "weight_decay": 0.0,
                    "name": "temperature",
                }
            )
        return groups

    @torch.no_grad()
    def init_proxies(self, class_means: torch.Tensor) -> None:
        """Class-mean warm start."""
        self.proxies.set_directions(class_means)
