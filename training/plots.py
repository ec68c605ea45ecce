"""PNG plots for evaluation and calibration reports (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facecore.calibration import roc_curve
from facecore.uncertainty import RiskCoverage


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_score_histograms(
    genuine: npt.NDArray[np.float64],
    impostor: npt.NDArray[np.float64],
    d_prime: float,
    thresholds: Mapping[str, float],
    path: Path,
    title: str,
) -> None:
    """Genuine and impostor cosine histograms with d' and vertical threshold lines."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(min(genuine.min(), impostor.min()), max(genuine.max(), impostor.max()), 60)
    ax.hist(impostor, bins=bins, alpha=0.6, density=True, label=f"impostor (n={impostor.size})")
    ax.hist(genuine, bins=bins, alpha=0.6, density=True, label=f"genuine (n={genuine.size})")
    for i, (name, t) in enumerate(thresholds.items()):
        ax.axvline(t, color=f"C{i + 2}", linestyle="--", label=f"{name} t={t:.3f}")
    ax.set_xlabel("cosine")
    ax.set_ylabel("density")
    ax.set_title(f"{title}: d' = {d_prime:.2f}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_roc(genuine: npt.NDArray[np.float64], impostor: npt.NDArray[np.float64], path: Path, title: str) -> None:
    """TAR against FAR on a log axis (a DET-style view of the operating range)."""
    plt = _pyplot()
    fpr, tpr, _ = roc_curve(genuine, impostor)
    fig, ax = plt.subplots(figsize=(5, 4))
    floor = 0.5 / impostor.size
    ax.plot(np.maximum(fpr, floor), tpr)
    ax.set_xscale("log")
    ax.set_xlim(floor, 1)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(f"{title}: ROC")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_risk_coverage(rc: RiskCoverage, path: Path, title: str) -> None:
    """Error among kept pairs against coverage: rejecting low-kappa pairs first vs at random."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(rc.coverage, rc.risk, marker="o", ms=3, label=f"reject lowest kappa first (gain {rc.gain:.2f})")
    ax.axhline(rc.random_risk, color="gray", linestyle="--", label="reject at random")
    ax.set_xlabel("coverage (fraction of pairs decided)")
    ax.set_ylabel("error among decided pairs")
    ax.set_title(f"{title}: risk-coverage")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
