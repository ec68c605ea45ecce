"""Train pd_vmf, pd_loss, d_loss, vmf_el and arcface with the same backbone, data and budget; evaluate on LFW.

    .venv/bin/python bench/train_compare.py [--epochs 8] [--backbone mobilefacenet]

Data: ../shared/data/cfp_dev aligned by `dprime align` to the 112 x 112 ArcFace template, minus the people
who also appear in lfw_dev (so the evaluation pairs are identity-disjoint from training). Every loss trains
from the same random initialisation for the same number of steps; evaluation runs `dprime evaluate` on the
lfw_dev pairs. Writes bench/results/train_compare.json and .md (accuracy, EER, d', kappa risk-coverage
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

from bench.common import RESULTS, markdown_table, write_json  # noqa: E402
from dprime.cli import main as dprime  # noqa: E402

logger = logging.getLogger("bench.train_compare")
LOSSES = ("pd_vmf", "pd_loss", "d_loss", "vmf_el", "arcface")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=REPO / "var" / "bench-train-compare")
    parser.add_argument("--backbone", default="mobilefacenet")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--losses", nargs="+", default=list(LOSSES))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    aligned = args.work / "cfp_dev_112"
    if dprime(["align", str(args.data / "cfp_dev"), str(aligned)]) != 0:
        raise SystemExit("alignment failed")
    overlap = sorted(
        {p.name for p in (args.data / "cfp_dev").iterdir() if p.is_dir()}
        & {p.name for p in (args.data / "lfw_dev").iterdir() if p.is_dir()}
    )
    exclude = args.work / "exclude.txt"
    exclude.write_text("\n".join(overlap) + "\n")
    config = REPO / "training" / "configs" / "base.yaml"
    rows: list[dict[str, Any]] = []
    for loss in args.losses:
        run = args.work / f"run_{loss}"
        overrides = [
            f"data.root={aligned}",
            f"data.exclude_identities={exclude}",
            f"model.backbone={args.backbone}",
            f"loss.name={loss}",
            f"optim.epochs={args.epochs}",
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
            "backbone": args.backbone,
            "epochs": args.epochs,
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
