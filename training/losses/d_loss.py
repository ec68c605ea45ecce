"""D-Loss (docs/method.md#training-pd-loss-and-the-vmf-term): d' of the batch's own pairwise cosines, no proxies
(the baseline PD-Loss improves on)."""

from __future__ import annotations

import torch

from training.losses.base import EmbeddingLoss, LossOutput


def pairwise_genuine_impostor(embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosines of the strict upper triangle split into same-label and different-label pairs."""
    x = torch.nn.functional.normalize(embeddings, dim=1)
    s = x @ x.T
    iu = torch.triu_indices(len(x), len(x), offset=1, device=x.device)
    scores = s[iu[0], iu[1]]
    same = labels[iu[0]] == labels[iu[1]]
    return scores[same], scores[~same]


def _reciprocal_c1(d: torch.Tensor, eps: float) -> torch.Tensor:
    """1/d, continued linearly below eps (value and slope match at eps) so a bad start still has a gradient."""
    return torch.where(d >= eps, 1.0 / d.clamp_min(eps), 1.0 / eps - (d - eps) / eps**2)


class DLoss(EmbeddingLoss):
    """1/d' (form='reciprocal', as the paper) or -log d' (form='log') over in-batch pairs."""

    name = "d_loss"

    def __init__(self, num_classes: int, embedding_dim: int, form: str = "reciprocal", eps: float = 0.05) -> None:
        super().__init__(num_classes, embedding_dim)
        if form not in ("reciprocal", "log"):
            raise ValueError(f"form must be 'reciprocal' or 'log', got {form!r}")
        self.form, self.eps = form, eps

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        """The loss on the batch's pairs; needs >= 2 genuine and >= 2 impostor pairs (a P x K sampler, K >= 2)."""
        gen, imp = pairwise_genuine_impostor(embeddings, labels)
        if gen.numel() < 2 or imp.numel() < 2:
            raise ValueError(
                f"D-Loss needs >= 2 genuine and impostor pairs per batch, got {gen.numel()} and {imp.numel()}; "
                "use identities_per_batch >= 2 and images_per_identity >= 2"
            )
        pooled = torch.sqrt(0.5 * (gen.var() + imp.var()) + 1e-12)
        d = (gen.mean() - imp.mean()) / pooled
        loss = _reciprocal_c1(d, self.eps) if self.form == "reciprocal" else -torch.log(d.clamp_min(self.eps))
        stats = {
            "d_prime": float(d.detach()),
            "mu_genuine": float(gen.detach().mean()),
            "mu_impostor": float(imp.detach().mean()),
        }
        return LossOutput(loss, stats)
