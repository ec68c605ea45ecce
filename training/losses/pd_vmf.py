"""pd_vmf, the default: L = L_PD(directions) + lambda(epoch) L_EL(directions, kappa)
(docs/method.md#training-pd-loss-and-the-vmf-term).

One proxy bank serves both terms and one cosine matrix feeds both. L_PD shapes the genuine/impostor
separation the threshold lives on and is blind to norms; L_EL is the only term that trains kappa. The
EL weight is zero for ``el_start_epoch`` epochs, then ramps linearly to ``el_weight`` over ``el_ramp_epochs``.
"""

from __future__ import annotations

import torch
from torch import nn

from training.losses.base import EmbeddingLoss, LossOutput, LrMultipliers, ProxyBank
from training.losses.pd_loss import proxy_decidability, stats_of, temperature_transform
from training.losses.vmf import ClassConcentration, Temperature, _vmf_groups, el_logits, vmf_stats


class PDVmfLoss(EmbeddingLoss):
    """PD-Loss plus closed-form EL-vMF on shared proxies."""

    name = "pd_vmf"
    uses_proxies = True

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        el_weight: float = 0.5,
        el_start_epoch: float = 0.0,
        el_ramp_epochs: float = 1.0,
        kappa_init: float = 16.0,
        kappa_floor: float = 1.0,
        temperature: float = 0.05,
        learn_temperature: bool = True,
        tau: float = 1.0,
        tau_mode: str = "linear",
        eps: float = 1e-4,
    ) -> None:
        super().__init__(num_classes, embedding_dim)
        self.proxies = ProxyBank(num_classes, embedding_dim)
        self.kappa = ClassConcentration(num_classes, kappa_init, kappa_floor)
        self.temperature = Temperature(temperature, learn_temperature)
        self.el_weight, self.el_start_epoch, self.el_ramp_epochs = el_weight, el_start_epoch, el_ramp_epochs
        self.tau, self.tau_mode, self.eps = tau, tau_mode, eps

    def current_el_weight(self) -> float:
        """lambda at the current epoch."""
        if self.epoch < self.el_start_epoch:
            return 0.0
        if self.el_ramp_epochs <= 0:
            return self.el_weight
        return self.el_weight * min(1.0, (self.epoch - self.el_start_epoch) / self.el_ramp_epochs)

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        """L_PD + lambda L_EL."""
        directions = self.proxies.directions()
        kappa_x = embeddings.norm(dim=1).clamp_min(1e-6)
        cos = (embeddings / kappa_x[:, None]) @ directions.T
        terms = proxy_decidability(temperature_transform(cos, self.tau, self.tau_mode), labels, eps=self.eps)
        logits = el_logits(embeddings, directions, self.kappa(), self.temperature(), cos=cos)
        el = nn.functional.cross_entropy(logits, labels)
        lam = self.current_el_weight()
        stats = stats_of(terms) | vmf_stats(embeddings, logits, labels)
        stats |= {"loss_pd": float(terms.loss.detach()), "loss_el": float(el.detach()), "el_weight": lam}
        return LossOutput(terms.loss + lam * el, stats)

    def param_groups(self, lr: float, mults: LrMultipliers) -> list[dict[str, object]]:
        """Proxies, concentrations and temperature each with their own multiplier, no weight decay."""
        return _vmf_groups(self.proxies, self.kappa, self.temperature, lr, mults)

    @torch.no_grad()
    def init_proxies(self, class_means: torch.Tensor) -> None:
        """Class-mean warm start."""
        self.proxies.set_directions(class_means)
