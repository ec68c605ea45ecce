"""Fitting kappa to the evidence each training image carries, after the directions are trained.

A direction map trained on a set of images learns to put every one of them close to its identity: measured on those
images every photo looks sure, and when only the clean photos train the directions, the EL term never sees a
degraded copy at all. Either way kappa learns little about evidence from training. So kappa is fitted against a
reference map that never fitted these images (the head's direction map as the init checkpoint holds it: FaceNet's
own bottleneck for the bundled model). For every training item the evidence c is the reference cosine between the
item and the mean of its person's *other* photos (clean copies), less its mean cosine to everyone else's; kappa's
parameters then maximise the vMF likelihood of c,

    -log C_D(s kappa) - s kappa c   per dimension, s learned,

whose minimum over kappa lies where A_D(s kappa) = c. Items of people with a single photo have no other photo
to compare with and are left out. The directions do not move. See docs/method.md#fitting-κ-to-the-evidence.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from training.backbones.layers import EmbeddingNet, EvidenceVmfHead
from training.config import KappaFitConfig
from training.losses.pd_vmf import vmf_image_nll

logger = logging.getLogger(__name__)


def evidence_targets(
    reference: nn.Linear, plain: torch.Tensor, labels: npt.NDArray[np.int64], per_image: int, direction_dim: int
) -> torch.Tensor:
    """Each item's evidence (NaN where its person has no other photo): its reference cosine to the mean of its
    person's *other* photos (clean copies), less its mean cosine to the other people's means.

    The second term takes out what a kind of photo shares with every face: low-resolution crops all look somewhat
    alike to a face model, so their cosine to their own person's other crops overstates what they show of that
    person. Items are laid out as DegradedViews does: item i is copy i % per_image of photo
    i // per_image.
    """
    with torch.no_grad():
        units = nn.functional.normalize(reference(plain[:, :direction_dim]), dim=1).double()
    n = units.shape[0]
    clean = np.arange(0, n, per_image)
    photos_of: dict[int, list[int]] = defaultdict(list)
    for item in clean.tolist():
        photos_of[int(labels[item])].append(item)
    people = sorted(photos_of)
    sums = torch.stack([units[photos_of[p]].sum(dim=0) for p in people])
    counts = torch.tensor([len(photos_of[p]) for p in people], dtype=torch.float64)
    row = {p: i for i, p in enumerate(people)}
    means = nn.functional.normalize(sums / counts[:, None], dim=1)
    out = torch.full((n,), float("nan"), dtype=torch.float64)
    for start in range(0, n, 4096):
        idx = torch.arange(start, min(n, start + 4096))
        own = torch.tensor([row[int(labels[i])] for i in idx.tolist()])
        to_all = units[idx] @ means.T
        baseline = (to_all.sum(dim=1) - to_all[torch.arange(idx.numel()), own]) / max(len(people) - 1, 1)
        others = sums[own] - units[(idx // per_image) * per_image]
        genuine = (units[idx] * nn.functional.normalize(others, dim=1)).sum(dim=1)
        usable = counts[own] >= 2
        out[idx[usable]] = (genuine - baseline)[usable]
    return out.float()


def fit_kappa(
    model: EmbeddingNet,
    plain: torch.Tensor,
    mirrored: torch.Tensor,
    targets: torch.Tensor,
    config: KappaFitConfig,
    seed: int = 0,
) -> dict[str, float]:
    """Fit the evidence head's kappa parameters to the targets; returns the fit's statistics."""
    head = model.head
    if not isinstance(head, EvidenceVmfHead):
        raise ValueError(f"kappa_fit needs model.head=vmf_evidence, got {type(head).__name__}")
    keep = torch.nonzero(torch.isfinite(targets)).squeeze(1)
    if keep.numel() == 0:
        raise ValueError("no training item has another photo of its person to measure evidence against")
    params = [*head.evidence.parameters(), *head.kappa.parameters()]
    log_scale = nn.Parameter(torch.tensor(math.log(config.scale_init)))
    optimizer = torch.optim.Adam([*params, log_scale], lr=config.lr)
    dim = head.direction.out_features
    gen = torch.Generator().manual_seed(seed)
    head.train()
    # The direction map stays as trained; only kappa's path learns (tap statistics included).
    for p in head.direction.parameters():
        p.requires_grad_(False)
    total = 0.0
    for epoch in range(config.epochs):
        order = keep[torch.randperm(keep.numel(), generator=gen)]
        total, steps = 0.0, 0
        for start in range(0, order.numel(), config.batch_size):
            idx = order[start : start + config.batch_size]
            kappa = head(torch.stack([plain[idx], mirrored[idx]], dim=1)).norm(dim=1)
            loss = vmf_image_nll(kappa, targets[idx], torch.exp(log_scale), dim)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            total += float(loss.detach())
            steps += 1
        total /= max(steps, 1)
        scale = float(log_scale.detach().exp())
        logger.info("kappa fit epoch %d/%d: vMF loss %.4f, scale %.3f", epoch + 1, config.epochs, total, scale)
    for p in head.direction.parameters():
        p.requires_grad_(True)
    head.eval()
    with torch.no_grad():
        kappa = torch.cat(
            [
                head(torch.stack([plain[i : i + 4096], mirrored[i : i + 4096]], dim=1)).norm(dim=1)
                for i in range(0, plain.shape[0], 4096)
            ]
        )
    finite = torch.isfinite(targets)
    rho = _spearman(kappa[finite].numpy(), targets[finite].numpy())
    logger.info("kappa fit: Spearman(kappa, evidence) %.3f on %d items", rho, int(finite.sum()))
    return {"kappa_fit_loss": total, "kappa_fit_scale": float(log_scale.exp()), "kappa_fit_spearman": rho}


def _spearman(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)
