"""Building a run's parts from its config: dataset, model, loss, optimiser groups and the LR schedule."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
from torch import nn

from facecore.manifest import BoxMarginCrop, PreprocessSpec
from training.backbones import EmbeddingNet, create_backbone
from training.checkpoint import load_checkpoint
from training.config import TrainConfig
from training.data.datasets import FaceDataset, IdentityFolderDataset, SyntheticFaceDataset, read_name_list
from training.data.degraded import DegradedViews
from training.data.recordio import RecordIODataset
from training.degrade import DegradeConfig
from training.losses import EmbeddingLoss, LrMultipliers, create_loss

logger = logging.getLogger(__name__)


def build_dataset(config: TrainConfig) -> FaceDataset:
    """The training images the config names."""
    data = config.data
    if data.kind == "synthetic":
        s = data.synthetic
        return SyntheticFaceDataset(
            s.num_classes, s.images_per_class, data.preprocess.input_size, s.noise, seed=config.seed
        )
    if data.root is None:
        raise ValueError("data.root is required")
    base: FaceDataset
    if data.kind == "recordio":
        base = RecordIODataset(data.root)
    else:
        # Degraded copies make a single photo several views of its person, enough for a P x K batch.
        base = IdentityFolderDataset(
            data.root,
            include=read_name_list(data.include_identities),
            exclude=read_name_list(data.exclude_identities),
            min_images=1 if data.degrade.copies else min(2, data.images_per_identity),
        )
    if not data.degrade.copies:
        return base
    return DegradedViews(base, data.degrade, face_width_share(data.degrade, data.preprocess))


def face_width_share(config: DegradeConfig, preprocess: PreprocessSpec) -> float:
    """The face's width as a share of the model crop's (what a degradation's target width is scaled by)."""
    if config.face_width_share is not None:
        return config.face_width_share
    crop = preprocess.crop
    if isinstance(crop, BoxMarginCrop) and crop.margin_px == 0:
        return 1.0 / (1.0 + crop.margin_ratio)
    raise ValueError("data.degrade.face_width_share is needed unless the crop is a box plus a relative margin")


def build_model(config: TrainConfig) -> EmbeddingNet:
    """The backbone and head, optionally initialised from a checkpoint and with a frozen trunk."""
    m = config.model
    model = create_backbone(
        m.backbone,
        m.embedding_dim,
        input_size=config.data.preprocess.input_size[0],
        head_scale=m.head_scale,
        dropout=m.dropout,
        head=m.head,
        kappa_init=m.kappa_init,
    )
    if m.init_checkpoint is not None:
        state = load_checkpoint(m.init_checkpoint)
        weights = state.get("model", state)
        missing, unexpected = model.load_state_dict(weights, strict=False)
        logger.info(
            "initialised from %s (missing %d, unexpected %d keys)", m.init_checkpoint, len(missing), len(unexpected)
        )
    if m.freeze_trunk:
        for p in model.trunk.parameters():
            p.requires_grad_(False)
    if m.freeze_direction:
        direction = getattr(model.head, "direction", None)
        if direction is None:
            raise ValueError("model.freeze_direction needs model.head=vmf")
        for p in direction.parameters():
            p.requires_grad_(False)
    return model


def build_loss(config: TrainConfig, num_classes: int) -> EmbeddingLoss:
    """The loss with its parameters."""
    return create_loss(config.loss.name, num_classes, config.model.embedding_dim, **config.loss.params)


def param_groups(model: nn.Module, loss: EmbeddingLoss, config: TrainConfig) -> list[dict[str, object]]:
    """Backbone weights with weight decay; biases, norms and PReLU slopes without; a vmf head's kappa MLP at its
    own rate; then the loss's own groups."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    kappa_head: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith(("head.kappa.", "head.evidence.")):
            kappa_head.append(p)
        else:
            (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    o = config.optim
    groups: list[dict[str, object]] = [
        {"params": decay, "lr": o.lr, "weight_decay": o.weight_decay, "name": "backbone"},
        {"params": no_decay, "lr": o.lr, "weight_decay": 0.0, "name": "backbone_no_decay"},
        {"params": kappa_head, "lr": o.lr * o.kappa_head_lr_mult, "weight_decay": o.weight_decay, "name": "kappa_head"},
    ]
    mults = LrMultipliers(proxy=o.proxy_lr_mult, kappa=o.kappa_lr_mult, temperature=o.temperature_lr_mult)
    groups += loss.param_groups(o.lr, mults)
    return [g for g in groups if g["params"]]


def build_optimizer(groups: list[dict[str, object]], config: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum or AdamW over the groups (each group keeps its own lr and weight decay)."""
    o = config.optim
    for g in groups:
        g["initial_lr"] = g["lr"]
    if o.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum)
    return torch.optim.AdamW(groups, lr=o.lr)


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """LR factor: linear warm-up from 1/warmup to 1, then cosine decay to 0 at total_steps."""

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor
