"""Shared bench plumbing: where results go and how they are written."""

from __future__ import annotations

import argparse
import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def data_dir() -> Path:
    """The labelled photos the benches measure on: DPRIME_DATA, else the team's copy beside the checkout."""
    import os

    return Path(os.environ.get("DPRIME_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def add_data_arguments(parser: argparse.ArgumentParser, repo: Path) -> None:
    """--data, --models-dir and --cache, as every bench on the held-out people takes them."""
    parser.add_argument("--data", type=Path, default=data_dir())
    parser.add_argument("--models-dir", type=Path, default=repo / "models")
    parser.add_argument("--cache", type=Path, default=repo / ".cache" / "dprime")


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import os

    return {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "processor": platform.processor(),
    }


def write_json(name: str, payload: dict[str, Any], out: Path | None = None) -> Path:
    """bench/results/<name>.json (or out), with a timestamp and the machine."""
    path = out or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"bench": name, "measured": datetime.now(UTC).isoformat(), "machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A GitHub markdown table of the given columns."""
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join("| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |\n" for r in rows)
    return head + body


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def model_from_git(model_id: str, revision: str, dest: Path) -> Path:
    """A model directory as committed at a git revision (model.onnx, manifest.json, run/record.json), so a model
    that left the tree can still be measured beside the one that replaced it. Extracted once into dest/model_id."""
    import subprocess

    out = dest / model_id
    repo = Path(__file__).resolve().parents[1]
    for rel in ("model.onnx", "manifest.json", "run/record.json"):
        target = out / rel
        if target.is_file():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        blob = subprocess.run(
            ["git", "-C", str(repo), "show", f"{revision}:models/{model_id}/{rel}"], check=True, capture_output=True
        ).stdout
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_bytes(blob)
        tmp.replace(target)
    return out
