"""The trainer through `dprime train` (main(argv)): smoke run, exact resume, config layering, 2-process DDP."""

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dprime.cli import main
from training.checkpoint import load_checkpoint
from training.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "training" / "configs" / "smoke.yaml"


def rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_smoke_training_through_main(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["train", "--config", str(SMOKE), "--out", str(run)]) == 0
    metrics = rows(run)
    assert [int(r["epoch"]) for r in metrics] == [1, 2, 3]
    assert all("loss" in r and float(r["loss"]) == float(r["loss"]) for r in metrics)
    assert float(metrics[-1]["d_prime"]) > float(metrics[0]["d_prime"])  # it learns
    final = load_checkpoint(run / "checkpoints" / "final.pt")
    assert final["config"]["model"]["backbone"] == "tiny" and len(final["class_names"]) == 12
    assert (run / "config.yaml").is_file() and any((run / "tensorboard").iterdir())


def test_resume_continues_from_the_same_step_with_the_same_loss(tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    args = ["train", "--config", str(SMOKE), "--set", "optim.epochs=2"]
    assert main([*args, "--out", str(straight)]) == 0
    assert main([*args, "--out", str(resumed), "--stop-after-steps", "6"]) == 0
    stopped = load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert (stopped["epoch"], stopped["step_in_epoch"], stopped["global_step"]) == (1, 2, 6)
    assert len(rows(resumed)) == 1
    assert main([*args, "--out", str(resumed)]) == 0
    a, b = rows(straight), rows(resumed)
    assert [r["global_step"] for r in a] == [r["global_step"] for r in b] == ["4", "8"]
    for key in ("loss", "d_prime", "kappa_p50"):
        assert float(b[1][key]) == pytest.approx(float(a[1][key]), rel=1e-5, abs=1e-6)
    wa = load_checkpoint(straight / "checkpoints" / "final.pt")["model"]
    wb = load_checkpoint(resumed / "checkpoints" / "final.pt")["model"]
    assert all(torch.allclose(wa[k].float(), wb[k].float(), atol=1e-5) for k in wa)


def test_config_layers_overrides_and_errors(tmp_path: Path) -> None:
    cfg = load_config(SMOKE, ["optim.lr=0.01", "loss.params.el_weight=0.2", "model.backbone=mobilefacenet"])
    assert cfg.optim.lr == 0.01 and cfg.model.backbone == "mobilefacenet"
    assert cfg.loss.params["el_weight"] == 0.2 and cfg.loss.params["temperature"] == 0.1  # merged with smoke's
    assert cfg.optim.proxy_lr_mult == 100.0  # from base.yaml
    with pytest.raises(ConfigError, match="optim.lr: Input should be greater than 0"):
        load_config(SMOKE, ["optim.lr=-1"])
    with pytest.raises(ConfigError, match="optim.nope: Extra inputs are not permitted"):
        load_config(SMOKE, ["optim.nope=1"])
    with pytest.raises(ConfigError, match="must look like key.path=value"):
        load_config(SMOKE, ["lr"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: base.yaml\ndata: {kind: folders}\n")
    (tmp_path / "base.yaml").write_text((REPO / "training/configs/base.yaml").read_text())
    with pytest.raises(ConfigError, match="data.root is required"):
        load_config(bad)


def test_amp_run_keeps_losses_finite(tmp_path: Path) -> None:
    assert (
        main(
            [
                "train",
                "--config",
                str(SMOKE),
                "--set",
                "optim.amp=true",
                "--set",
                "optim.epochs=1",
                "--out",
                str(tmp_path / "amp"),
            ]
        )
        == 0
    )
    assert float(rows(tmp_path / "amp")[0]["loss"]) < 1e6


def test_two_process_ddp_on_gloo(tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=1",
        "--nproc-per-node=2",
        f"--master-port={port}",
        "-m",
        "dprime",
        "train",
        "--config",
        str(SMOKE),
        "--set",
        "optim.epochs=2",
        "--set",
        "optim.steps_per_epoch=4",
        "--out",
        str(run),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = load_checkpoint(run / "checkpoints" / "final.pt")
    assert final["world_size"] == 2 and final["global_step"] == 4  # 4 global batches split over 2 ranks
    assert [r["epoch"] for r in rows(run)] == ["1", "2"]


def test_frozen_trunk_trains_the_head_only_from_cached_features(tmp_path: Path) -> None:
    run = tmp_path / "frozen"
    init = tmp_path / "init.pt"
    from training.checkpoint import save_checkpoint
    from training.setup import build_model

    cfg = load_config(SMOKE, ["model.head=vmf", "model.kappa_init=8"])
    save_checkpoint(init, {"model": build_model(cfg).state_dict()})
    assert (
        main(
            [
                "train",
                "--config",
                str(SMOKE),
                "--set",
                "model.freeze_trunk=true",
                "--set",
                "model.head=vmf",
                "--set",
                "model.kappa_init=8",
                "--set",
                f"model.init_checkpoint={init}",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    start = load_checkpoint(init)["model"]
    end = load_checkpoint(run / "checkpoints" / "final.pt")["model"]
    trunk_keys = [k for k in start if k.startswith("trunk.")]
    assert trunk_keys and all(torch.equal(start[k], end[k]) for k in trunk_keys)  # weights and BN statistics
    assert not torch.equal(start["head.kappa.2.bias"], end["head.kappa.2.bias"])
    assert float(rows(run)[-1]["images_per_second"]) > 0
