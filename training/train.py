"""The training recipe: `dprime train --config C [--set k=v ...] --out RUN`.

Reads top to bottom like the recipe it is: set up (distributed if launched by torchrun), build data,
model, loss and optimiser, resume or warm-start the proxies, then train epoch by epoch, writing
``RUN/metrics.csv``, TensorBoard events and checkpoints. Batches and flips derive from (seed, epoch, step),
so a resumed run replays exactly what an uninterrupted one would have done.
"""

from __future__ import annotations

import csv
import logging
import os
import random
import time
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from facepipe.tensors import to_input_tensor
from training.backbones import EmbeddingNet
from training.checkpoint import (
    CHECKPOINT_DIR,
    FINAL,
    LAST,
    git_commit,
    load_checkpoint,
    package_versions,
    prune,
    save_checkpoint,
)
from training.config import TrainConfig, dump_config
from training.data.datasets import FaceDataset
from training.data.samplers import PKBatchSampler
from training.losses import EmbeddingLoss
from training.setup import build_dataset, build_loss, build_model, build_optimizer, param_groups, warmup_cosine
from training.trunk_features import compute_trunk_features

logger = logging.getLogger(__name__)

# Under the run directory: the frozen trunk's cached features (see training.trunk_features).
TRUNK_FEATURES_DIR = "trunk_features"


@dataclass
class Dist:
    """Where this process sits in a (possibly single-process) run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        """True on rank 0, which writes files and shows progress."""
        return self.rank == 0


def init_distributed() -> Dist:
    """Join the process group torchrun set up (gloo on CPU, nccl on GPUs), or run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        device = torch.device("cuda", local)
    else:
        dist.init_process_group("gloo")
        device = torch.device("cpu")
    return Dist(rank=rank, world=world, local_rank=local, device=device)


class TrainStep(nn.Module):
    """Model and loss as one module, so DDP synchronises the proxies' gradients with the backbone's.

    With ``features_only`` the inputs are cached trunk features and only the head runs.
    """

    def __init__(self, model: EmbeddingNet, loss: EmbeddingLoss, features_only: bool = False) -> None:
        super().__init__()
        self.model = model
        self.loss = loss
        self.features_only = features_only

    def forward(
        self, inputs: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """(loss, embeddings, stats)."""
        embeddings = self.model.head(inputs) if self.features_only else self.model(inputs)
        out = self.loss(embeddings, labels)
        return out.loss, embeddings, out.stats


class TrunkFeatureCache:
    """A frozen trunk's features of every training image and of its mirror, computed once in eval mode.

    With the trunk frozen, each step then costs only the head: epochs over a large pretrained backbone become
    seconds on a CPU. Memory is 2 x images x feature_dim floats.
    """

    def __init__(
        self, model: EmbeddingNet, dataset: FaceDataset, config: TrainConfig, d: Dist, cache_dir: Path | None = None
    ) -> None:
        batch = config.data.identities_per_batch * config.data.images_per_identity
        self.plain, self.mirrored = compute_trunk_features(
            model.trunk,
            dataset,
            lambda idx: batch_tensor(dataset, idx, config, None)[0],
            batch,
            d.device,
            cache_dir if d.main and d.world == 1 else None,
            show_progress=d.main,
        )
        self.labels = torch.from_numpy(dataset.labels)
        self.views = model.views

    def batch(self, indices: np.ndarray, flip_seed: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Features of a batch (each sample mirrored with probability 1/2 when flip_seed is given) and labels."""
        idx = torch.from_numpy(np.asarray(indices, dtype=np.int64))
        if self.views == 2:  # the head takes both views; mirroring would only swap them
            return torch.stack([self.plain[idx], self.mirrored[idx]], dim=1), self.labels[idx]
        x = self.plain[idx]
        if flip_seed is not None:
            gen = torch.Generator().manual_seed(flip_seed)
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x = torch.where(flip[:, None], self.mirrored[idx], x)
        return x, self.labels[idx]


def batch_tensor(
    dataset: FaceDataset, indices: np.ndarray, config: TrainConfig, flip_seed: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of a batch as the model input tensor (the service's own preprocessing) and their labels."""
    spec = config.data.preprocess
    h, w = spec.input_size
    crops, labels = [], []
    for i in indices:
        img, label = dataset[int(i)]
        if img.shape[:2] != (h, w):
            img = np.asarray(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA), dtype=np.uint8)
        crops.append(img)
        labels.append(label)
    x = torch.from_numpy(to_input_tensor(crops, spec))
    if flip_seed is not None:
        gen = torch.Generator().manual_seed(flip_seed)
        flip = torch.rand(len(x), generator=gen) < 0.5
        x[flip] = x[flip].flip(-1)
    return x, torch.tensor(labels, dtype=torch.long)


@torch.no_grad()
def class_mean_directions(
    model: EmbeddingNet,
    dataset: FaceDataset,
    config: TrainConfig,
    d: Dist,
    num_classes: int,
    cache: TrunkFeatureCache | None = None,
) -> torch.Tensor:
    """Per-class mean of unit embeddings over the training set (eval mode, no flips), summed across ranks."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(num_classes, config.model.embedding_dim, dtype=torch.float64)
    counts = torch.zeros(num_classes, dtype=torch.float64)
    idx = np.arange(d.rank, len(dataset), d.world)
    batch = config.data.identities_per_batch * config.data.images_per_identity
    for start in tqdm(range(0, len(idx), batch), desc="proxy warm start", disable=not d.main or None):
        if cache is not None:
            x, y = cache.batch(idx[start : start + batch], None)
            e = nn.functional.normalize(model.head(x.to(d.device)).float(), dim=1).double().cpu()
        else:
            x, y = batch_tensor(dataset, idx[start : start + batch], config, None)
            e = nn.functional.normalize(model(x.to(d.device)).float(), dim=1).double().cpu()
        sums.index_add_(0, y, e)
        counts.index_add_(0, y, torch.ones(len(y), dtype=torch.float64))
    if d.world > 1:
        dist.all_reduce(sums)
        dist.all_reduce(counts)
    model.train(was_training)
    return (sums / counts.clamp_min(1)[:, None]).float()


def training_items(dataset: FaceDataset, config: TrainConfig) -> npt.NDArray[np.int64]:
    """Indices of the items training batches are drawn from (data.direction_views)."""
    per_image = int(getattr(dataset, "per_image", 1))
    step = per_image if config.data.direction_views == "clean" else 1
    return np.arange(0, len(dataset), step, dtype=np.int64)


def fit_kappa_stage(model: EmbeddingNet, dataset: FaceDataset, cache: TrunkFeatureCache, config: TrainConfig) -> None:
    """Fit the evidence head's kappa against the init checkpoint's directions (training.kappa_fit)."""
    from training.kappa_fit import evidence_targets, fit_kappa

    if config.model.init_checkpoint is None:
        raise ValueError("kappa_fit needs model.init_checkpoint")
    init = load_checkpoint(config.model.init_checkpoint)
    weights = init.get("model", init)
    head = model.head
    reference = nn.Linear(head.direction.in_features, head.direction.out_features)  # type: ignore[union-attr,arg-type]
    reference.load_state_dict({"weight": weights["head.direction.weight"], "bias": weights["head.direction.bias"]})
    per_image = int(getattr(dataset, "per_image", 1))
    direction_dim = int(head.direction.in_features)  # type: ignore[union-attr,arg-type]
    targets = evidence_targets(reference, cache.plain, dataset.labels, per_image, direction_dim)
    fit_kappa(model, cache.plain, cache.mirrored, targets, config.kappa_fit, config.seed)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (model init and dropout draw from these)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class MetricsLog:
    """RUN/metrics.csv (one row per epoch) and TensorBoard events, rank 0 only."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.path = out / "metrics.csv"
        self.enabled = enabled
        self.writer: Any = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out / "tensorboard"))

    def write(self, row: dict[str, float]) -> None:
        """Append one epoch's row (the header comes from the first row written to the file)."""
        if not self.enabled:
            return
        exists = self.path.is_file()
        fields = list(row)
        if exists:
            with open(self.path, newline="") as fh:
                fields = next(csv.reader(fh))
        with open(self.path, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
            if not exists:
                w.writeheader()
            w.writerow(row)
        for key, value in row.items():
            if key != "epoch":
                self.writer.add_scalar(key, value, int(row["epoch"]))
        self.writer.flush()

    def close(self) -> None:
        """Flush TensorBoard."""
        if self.writer is not None:
            self.writer.close()


def run_training(
    config: TrainConfig, out: Path, stop_after_steps: int | None = None, feature_cache: Path | None = None
) -> Path:
    """Train (or resume) into ``out``; returns the final checkpoint path (or last.pt when stopped early).

    A frozen trunk's features are kept in ``feature_cache`` (default: under ``out``), so runs that share one,
    such as successive rebuilds of a model, compute each image's features once.
    """
    d = init_distributed()
    out = Path(out)
    ckpt_dir = out / CHECKPOINT_DIR
    seed_everything(config.seed)
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(dump_config(config), encoding="utf-8")
        logger.info("resolved config:\n%s", dump_config(config))
    dataset = build_dataset(config)
    num_classes = len(dataset.class_names)
    model = build_model(config).to(d.device)
    loss_fn = build_loss(config, num_classes).to(d.device)
    optimizer = build_optimizer(param_groups(model, loss_fn, config), config)
    # With clean direction views the batches draw only the photos themselves: degraded copies that a face model
    # cannot tell apart would otherwise pull the directions of the clean photos towards them.
    batch_items = training_items(dataset, config)
    sampler = PKBatchSampler(
        dataset.labels[batch_items],
        config.data.identities_per_batch,
        config.data.images_per_identity,
        config.seed,
        config.optim.steps_per_epoch,
        d.rank,
        d.world,
    )
    steps_per_epoch = sampler.steps_per_rank
    total_steps = steps_per_epoch * config.optim.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(total_steps, int(config.optim.warmup_epochs * steps_per_epoch))
    )
    start_epoch, start_step, global_step = 0, 0, 0
    resume_path = ckpt_dir / LAST
    finished = resume_path.is_file() and load_checkpoint(resume_path)["epoch"] >= config.optim.epochs
    # A run that already finished needs no trunk features: it only rewrites final.pt.
    cache = (
        TrunkFeatureCache(model, dataset, config, d, feature_cache or out / TRUNK_FEATURES_DIR)
        if config.model.freeze_trunk and (not finished or config.kappa_fit.enabled)
        else None
    )
    if resume_path.is_file():
        state = load_checkpoint(resume_path)
        model.load_state_dict(state["model"])
        loss_fn.load_state_dict(state["loss"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, start_step, global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        logger.info(
            "resumed from %s at epoch %d step %d (global step %d)", resume_path, start_epoch, start_step, global_step
        )
    elif config.loss.warm_start and loss_fn.uses_proxies:
        means = class_mean_directions(model, dataset, config, d, num_classes, cache)
        loss_fn.init_proxies(means.to(d.device))
        logger.info("proxies warm-started from class means of %d identities", num_classes)
    step_module: nn.Module = TrainStep(model, loss_fn, features_only=cache is not None)
    if d.world > 1:
        step_module = nn.parallel.DistributedDataParallel(step_module, find_unused_parameters=False)
    metrics = MetricsLog(out, d.main)
    amp = (
        torch.autocast(d.device.type, dtype=torch.bfloat16 if d.device.type == "cpu" else torch.float16)
        if config.optim.amp
        else nullcontext()
    )
    meta = {
        "class_names": dataset.class_names,
        "world_size": d.world,
        "git_commit": git_commit(),
        "versions": package_versions(),
    }

    partial: dict[str, Any] = {"sums": {}, "count": 0}
    if resume_path.is_file():
        partial = state.get("epoch_partial", partial)

    def snapshot(epoch: int, step_in_epoch: int, sums: dict[str, float], count: int) -> dict[str, Any]:
        return {
            "model": model.state_dict(),
            "loss": loss_fn.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "epoch": epoch,
            "step_in_epoch": step_in_epoch,
            "global_step": global_step,
            # The running sums of an interrupted epoch, so its metrics row covers every step.
            "epoch_partial": {"sums": dict(sums), "count": count},
            "config": config.model_dump(mode="json"),
            **meta,
        }

    model.train()
    if config.model.freeze_trunk:
        model.trunk.eval()  # frozen means frozen: batch norms keep their running statistics
    for epoch in range(start_epoch, config.optim.epochs):
        batches = [batch_items[b] for b in sampler.epoch_batches(epoch)]
        first = start_step if epoch == start_epoch else 0
        sums: dict[str, float] = defaultdict(float)
        n, t0 = 0, time.perf_counter()
        if epoch == start_epoch and first > 0:
            sums.update(partial["sums"])
            n = int(partial["count"])
        bar = tqdm(
            range(first, len(batches)), desc=f"epoch {epoch + 1}/{config.optim.epochs}", disable=not d.main or None
        )
        for step in bar:
            loss_fn.set_epoch(epoch + step / len(batches))
            flip_seed = (config.seed * 1_000_003 + global_step) * d.world + d.rank if config.data.flip else None
            if cache is not None:
                x, y = cache.batch(batches[step], flip_seed)
            else:
                x, y = batch_tensor(dataset, batches[step], config, flip_seed)
            with amp:
                loss, _, stats = step_module(x.to(d.device), y.to(d.device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.optim.grad_clip:
                nn.utils.clip_grad_norm_(step_module.parameters(), config.optim.grad_clip)
            optimizer.step()
            schedule.step()
            global_step += 1
            n += 1
            sums["loss"] += float(loss.detach())
            for k, v in stats.items():
                sums[k] += v
            bar.set_postfix(loss=f"{sums['loss'] / n:.4f}")
            every = config.checkpoint.every_steps
            done = step + 1 == len(batches)
            if d.main and every and global_step % every == 0 and not done:
                save_checkpoint(ckpt_dir / LAST, snapshot(epoch, step + 1, sums, n))
            if stop_after_steps is not None and global_step >= stop_after_steps and not done:
                if d.main:
                    save_checkpoint(ckpt_dir / LAST, snapshot(epoch, step + 1, sums, n))
                    logger.info("stopped after %d steps as asked; rerun the same command to resume", global_step)
                metrics.close()
                return ckpt_dir / LAST
        seconds = time.perf_counter() - t0
        row: dict[str, float] = {
            "epoch": epoch + 1,
            "global_step": global_step,
            "lr": float(schedule.get_last_lr()[0]),
            "seconds": seconds,
            "images_per_second": (len(batches) - first) * len(batches[0]) * d.world / max(seconds, 1e-9),
        }
        row |= {k: v / max(n, 1) for k, v in sums.items()}
        metrics.write(row)
        if d.main:
            logger.info("epoch %d: %s", epoch + 1, ", ".join(f"{k}={v:.4g}" for k, v in row.items()))
            save_checkpoint(ckpt_dir / LAST, snapshot(epoch + 1, 0, {}, 0))
            save_checkpoint(ckpt_dir / f"step_{global_step}.pt", snapshot(epoch + 1, 0, {}, 0))
            prune(ckpt_dir, config.checkpoint.keep_last)
    metrics.close()
    if config.kappa_fit.enabled and cache is not None and d.main:
        fit_kappa_stage(model, dataset, cache, config)
    final = ckpt_dir / FINAL
    if d.main:
        save_checkpoint(final, snapshot(config.optim.epochs, 0, {}, 0))
        logger.info("training finished: %s", final)
    if d.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return final
