"""PD-Loss: maximise the decidability of sample-to-own-proxy vs sample-to-other-proxy cosines
(docs/method.md#training-pd-loss-and-the-vmf-term).

L_PD = -log(mu_g - mu_i) + 1/2 log(var_g + var_i), statistics pooled over the batch with unbiased
variances, the impostor set holding all C-1 foreign proxies of every sample. The impostor statistics
are reduced from the full B x C score matrix minus its genuine entries, so no mask is materialised.
For Delta < eps the -log is continued linearly (C1 at eps), so bad starts still get a gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from training.losses.base import EmbeddingLoss, LossOutput, ProxyBank


@dataclass(frozen=True)
class DecidabilityTerms:
    """Genuine/impostor moments and the loss built from them."""

    loss: torch.Tensor
    mu_g: torch.Tensor
    mu_i: torch.Tensor
    var_g: torch.Tensor
    var_i: torch.Tensor


def log_decidability_loss(delta: torch.Tensor, var: torch.Tensor, eps: float, var_eps: float) -> torch.Tensor:
    """-log(Delta) + 1/2 log(V) with the C1 linear continuation of -log below eps."""
    safe = delta.clamp_min(eps)
    neg_log = torch.where(delta >= eps, -torch.log(safe), -math.log(eps) - (delta - eps) / eps)
    return neg_log + 0.5 * torch.log(var + var_eps)


def proxy_decidability(
    scores: torch.Tensor, labels: torch.Tensor, eps: float = 1e-4, var_eps: float = 1e-8, ddof: int = 1
) -> DecidabilityTerms:
    """PD-Loss terms from a score matrix (B, C) and labels (B,)."""
    b, c = scores.shape
    if b < 2 or c < 2:
        raise ValueError(f"PD-Loss needs at least 2 samples and 2 classes, got B={b}, C={c}")
    genuine = scores.gather(1, labels[:, None]).squeeze(1)
    n_g, n_i = b, b * (c - 1)
    mu_g = genuine.mean()
    mu_i = (scores.sum() - genuine.sum()) / n_i
    var_g = ((genuine - mu_g) ** 2).sum() / (n_g - ddof)
    # Two-pass variance of the impostors: all deviations from mu_i, minus the genuine entries' share.
    sq_all = ((scores - mu_i) ** 2).sum()
    sq_gen = ((genuine - mu_i) ** 2).sum()
    var_i = (sq_all - sq_gen) / (n_i - ddof)
    loss = log_decidability_loss(mu_g - mu_i, var_g + var_i, eps, var_eps)
    return DecidabilityTerms(loss=loss, mu_g=mu_g, mu_i=mu_i, var_g=var_g, var_i=var_i)


def temperature_transform(scores: torch.Tensor, tau: float, mode: str) -> torch.Tensor:
    """'linear': s / tau (d' is invariant to it, kept as a no-op option); 'exp': exp((s - 1) / tau)."""
    if mode == "linear":
        return scores / tau
    if mode == "exp":
        return torch.exp((scores - 1.0) / tau)
    raise ValueError(f"unknown temperature mode {mode!r}; expected 'linear' or 'exp'")


def stats_of(terms: DecidabilityTerms) -> dict[str, float]:
    """Loggable statistics."""
    mu_g, mu_i = terms.mu_g.detach(), terms.mu_i.detach()
    pooled = torch.sqrt(0.5 * (terms.var_g + terms.var_i).detach()).clamp_min(1e-12)
    return {"d_prime": float((mu_g - mu_i) / pooled), "mu_genuine": float(mu_g), "mu_impostor": float(mu_i)}


class PDLoss(EmbeddingLoss):
    """Proxy-Decidability loss on the directions of the embeddings."""

    name = "pd_loss"
    uses_proxies = True

    def __init__(
        self, num_classes: int, embedding_dim: int, tau: float = 1.0, tau_mode: str = "linear", eps: float = 1e-4
    ) -> None:
        super().__init__(num_classes, embedding_dim)
        self.proxies = ProxyBank(num_classes, embedding_dim)
        self.tau, self.tau_mode, self.eps = tau, tau_mode, eps

    def scores(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Cosines of every sample with every proxy (B, C)."""
        return torch.nn.functional.normalize(embeddings, dim=1) @ self.proxies.directions().T

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        """L_PD on the batch."""
        s = temperature_transform(self.scores(embeddings), self.tau, self.tau_mode)
        terms = proxy_decidability(s, labels, eps=self.eps)
        return LossOutput(terms.loss, stats_of(terms))

    @torch.no_grad()
    def init_proxies(self, class_means: torch.Tensor) -> None:
        """Class-mean warm start: each proxy starts at its identity's mean direction."""
        self.proxies.set_directions(class_means)
