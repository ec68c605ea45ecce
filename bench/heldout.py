"""The held-out people both accuracy and decision benches measure on, and the models they compare.

Pair sets: LFW dev fold 9, CFP frontal-frontal and frontal-profile folds 4-5, and the dev low-resolution pairs
(CelebA people seen only as low-resolution crops, the bundled model's ``evaluate_lowres`` split). Every model
compared must have neither trained nor calibrated on any of these people: its run record says who it used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import model_from_git
from training.data.pairs import PairSet, load_cfp_pairs, load_lfw_pairs
from training.recipes.splits import lowres_pair_file, person_images

# Every role a run record may name that saw people's photos before evaluation.
SEEN_ROLES = ("train", "calibrate_celeba", "calibrate_cfp", "calibrate_lfw", "check_cfp", "check_lfw")


@dataclass(frozen=True)
class HeldOut:
    """The evaluated people of the bundled model and their pair sets."""

    pairs: dict[str, PairSet]
    galleries: dict[str, tuple[list[Path], list[str]]]  # all photos of each set's held-out people
    people: set[str]


def model_dirs(models_dir: Path, active: str, compare: list[str], cache: Path) -> dict[str, Path]:
    """The active model and each ``ID@REVISION`` taken from git history (or an ID still in models_dir)."""
    out = {active: models_dir / active}
    for spec in compare:
        model_id, _, revision = spec.partition("@")
        out[model_id] = model_from_git(model_id, revision, cache / "models") if revision else models_dir / model_id
    return out


def held_out(data: Path, record: dict[str, object], cache: Path) -> HeldOut:
    """The bundled model's evaluated people and pair sets (the low-resolution pair file rebuilt from its split)."""
    splits = record["splits"]
    assert isinstance(splits, dict)
    lowres = set(splits.get("evaluate_lowres", []))
    pairs = {
        "LFW (dev fold 9)": _folds(load_lfw_pairs(data / "lfw_dev" / "pairs_dev.txt"), [0]),
        "CFP-FF (folds 4-5)": _folds(load_cfp_pairs(data / "cfp_dev" / "pairs_ff.tsv"), [4, 5]),
        "CFP-FP (folds 4-5)": _folds(load_cfp_pairs(data / "cfp_dev" / "pairs_fp.tsv"), [4, 5]),
    }
    galleries = {
        "LFW": person_images(data / "lfw_dev", set(splits["evaluate_lfw"])),
        "CFP": person_images(data / "cfp_dev", set(splits["evaluate_cfp"])),
    }
    if lowres:
        root = data / "celeba_dev" / "lowres"
        tsv = lowres_pair_file(root, lowres, cache / "lowres_pairs")
        pairs["low-res (dev)"] = load_cfp_pairs(tsv)
        galleries["low-res"] = person_images(root, lowres)
    people = set(splits["evaluate_lfw"]) | set(splits["evaluate_cfp"]) | lowres
    return HeldOut(pairs, galleries, people)


def _folds(pairs: PairSet, folds: list[int]) -> PairSet:
    return pairs.subset(np.isin(pairs.folds, folds), f"{pairs.name}[folds {','.join(map(str, folds))}]")


def check_unseen(model_dir: Path, people: set[str]) -> dict[str, object]:
    """The model's run record, after checking that it trained and calibrated on none of the people."""
    record: dict[str, object] = json.loads((model_dir / "run" / "record.json").read_text())
    splits = record["splits"]
    assert isinstance(splits, dict)
    seen = set().union(*(set(splits.get(role, [])) for role in SEEN_ROLES))
    overlap = seen & people
    if overlap:
        raise SystemExit(f"{model_dir.name} saw {len(overlap)} evaluated people, e.g. {sorted(overlap)[:3]}")
    return record


def active_held_out(models_dir: Path, data: Path, cache: Path) -> tuple[Path, dict[str, object], HeldOut]:
    """The active model's folder, its run record and its held-out people, after checking it saw none of them."""
    from facecore.registry import ModelRegistry

    model_dir = models_dir / str(ModelRegistry(models_dir).active_id())
    record = check_unseen(model_dir, set())
    held = held_out(data, record, cache)
    check_unseen(model_dir, held.people)
    return model_dir, record, held
