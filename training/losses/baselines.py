"""Baselines taken from pytorch-metric-learning as they are, behind our loss interface."""

from __future__ import annotations

from typing import Any

import torch
from pytorch_metric_learning import losses as pml_losses

from training.losses.base import EmbeddingLoss, LossOutput, LrMultipliers

_PML = {
    "arcface": pml_losses.ArcFaceLoss,
    "cosface": pml_losses.CosFaceLoss,
    "proxy_anchor": pml_losses.ProxyAnchorLoss,
    "norm_softmax": pml_losses.NormalizedSoftmaxLoss,
}


class PMLLoss(EmbeddingLoss):
    """A pytorch-metric-learning classification/proxy loss (it normalises the embeddings itself)."""

    uses_proxies = True

    def __init__(self, num_classes: int, embedding_dim: int, kind: str, **params: Any) -> None:
        super().__init__(num_classes, embedding_dim)
        self.name = kind
        self.inner = _PML[kind](num_classes=num_classes, embedding_size=embedding_dim, **params)

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        """The wrapped loss."""
        return LossOutput(self.inner(embeddings, labels))

    def param_groups(self, lr: float, mults: LrMultipliers) -> list[dict[str, object]]:
        """The class weights, as proxies."""
        return [{"params": list(self.inner.parameters()), "lr": lr * mults.proxy, "weight_decay": 0.0, "name": "proxy"}]

    @torch.no_grad()
    def init_proxies(self, class_means: torch.Tensor) -> None:
        """Warm-start the class weights from class means (PML keeps them as W (D, C) or proxies (C, D))."""
        means = torch.nn.functional.normalize(class_means.float(), dim=1)
        if hasattr(self.inner, "W"):
            self.inner.W.copy_(means.T * self.inner.W.norm(dim=0, keepdim=True))
        elif hasattr(self.inner, "proxies"):
            self.inner.proxies.copy_(means * self.inner.proxies.norm(dim=1, keepdim=True))
