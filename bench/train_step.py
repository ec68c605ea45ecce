"""Images/s of one training step (backbone forward+backward, loss, optimiser) for each loss at 1k/10k/100k classes.

    .venv/bin/python bench/train_step.py [--backbone mobilefacenet] [--batch 64] [--steps 5]

The loss's share of the step is what differs between losses; PD-Loss is to cost at most 5 % more than
NormSoftmax at the same class count. Writes bench/results/train_step.json.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from bench.common import markdown_table, write_json  # noqa: E402
from training.backbones import create_backbone, default_input_size  # noqa: E402
from training.losses import create_loss  # noqa: E402

logger = logging.getLogger("bench.train_step")
LOSSES = ("norm_softmax", "pd_loss", "pd_vmf", "vmf_el", "arcface", "cosface", "d_loss")


def time_steps(
    backbone: torch.nn.Module, loss: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int
) -> float:
    """Images/s of full training steps (forward, loss, backward, SGD update)."""
    params = [p for p in list(backbone.parameters()) + list(loss.parameters()) if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-3)

    def step() -> None:
        opt.zero_grad()
        loss(backbone(images), labels).loss.backward()
        opt.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * len(images) / (time.perf_counter() - start)


def time_loss(loss: torch.nn.Module, embeddings: torch.Tensor, labels: torch.Tensor, repeats: int = 10) -> float:
    """Milliseconds of the loss alone (forward and backward) on fixed embeddings."""
    e = embeddings.detach().requires_grad_()
    loss(e, labels).loss.backward()
    start = time.perf_counter()
    for _ in range(repeats):
        loss(e, labels).loss.backward()
    return (time.perf_counter() - start) / repeats * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="mobilefacenet")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--classes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    torch.manual_seed(0)
    device = torch.device(args.device)
    size = default_input_size(args.backbone)
    backbone = create_backbone(args.backbone, 512).to(device)
    images = torch.randn(args.batch, 3, size, size, device=device)
    rows = []
    for n_classes in args.classes:
        labels = (torch.arange(args.batch, device=device) // 4) % n_classes  # P x K batches, K = 4
        for name in LOSSES:
            loss = create_loss(name, n_classes, 512).to(device)
            ips = time_steps(backbone, loss, images, labels, args.steps)
            loss_ms = time_loss(loss, torch.randn(args.batch, 512, device=device) * 20, labels)
            rows.append({"loss": name, "classes": n_classes, "images_per_s": ips, "loss_ms": loss_ms})
            logger.info("%s @ %d classes: %.1f img/s, loss %.2f ms", name, n_classes, ips, loss_ms)
    for n_classes in args.classes:
        ref = next(r for r in rows if r["loss"] == "norm_softmax" and r["classes"] == n_classes)
        for r in rows:
            if r["classes"] == n_classes:
                r["step_cost_vs_norm_softmax"] = ref["images_per_s"] / r["images_per_s"] - 1.0
    table = markdown_table(rows, ["loss", "classes", "images_per_s", "loss_ms", "step_cost_vs_norm_softmax"])
    path = write_json(
        "train_step",
        {"backbone": args.backbone, "batch": args.batch, "device": args.device, "rows": rows, "markdown": table},
    )
    sys.stdout.write(table + f"\nwritten to {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
