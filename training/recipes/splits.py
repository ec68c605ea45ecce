"""Who does what in the bundled model's recipe: train, calibrate, evaluate, each person in one role only.

  evaluate   LFW dev fold 9, CFP protocol folds 4-5, and 300 CelebA people seen only as low-resolution crops
             (the dev low-resolution pairs); never trained or calibrated on
  calibrate  half of LFW dev fold 10's people, CFP fold 3 (frontal and profile photos) and 400 more low-resolution
             CelebA people: every threshold, band, LLR and identification point in the manifest
  train      everyone else: CFP folds 1-2, the other half of LFW fold 10, CelebA's full-photo people and the
             remaining low-resolution people

Calibration holds ordinary photos (LFW), profiles (CFP) and low-resolution crops, so each kappa band is fitted on
the kind of photo that lands in it. CelebA's full photos train rather than calibrate: its people span years and
occasions between photos more than a service's enrolled faces usually do, and as a calibration set they made
every reject threshold so low that most ordinary impostor pairs came back uncertain.

CelebA labels its people by number, so one of them may be an LFW or CFP person under another name, or another
CelebA person under a second number: a CelebA person whose mean FaceNet direction comes close to any LFW or CFP
person's, or to another CelebA person's, is left out of every role.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from training.data.datasets import IMAGE_SUFFIXES
from training.data.pairs import PairSet, load_cfp_pairs, load_lfw_pairs

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


class SplitSizes(BaseModel):
    """How many low-resolution CelebA people evaluation and calibration draw."""

    evaluate_lowres: int = 300
    calibrate_lowres: int = 400
    seed: int = 0


def fold_identities(pairs: PairSet, folds: Sequence[int]) -> set[str]:
    """Names appearing in the pairs of the given protocol folds."""
    if pairs.identities is None:
        return set()
    ids = np.asarray(pairs.identities)
    mask = np.isin(pairs.folds, list(folds))
    return set(ids[pairs.first[mask]]) | set(ids[pairs.second[mask]])


def benchmark_splits(data: Path, seed: int = 0) -> dict[str, set[str]]:
    """LFW and CFP people by role (a person in both folders counts once, in the first role that names them)."""
    lfw = load_lfw_pairs(data / "lfw_dev" / "pairs_dev.txt")
    ff = load_cfp_pairs(data / "cfp_dev" / "pairs_ff.tsv")
    fp = load_cfp_pairs(data / "cfp_dev" / "pairs_fp.tsv")

    def cfp(folds: Sequence[int]) -> set[str]:
        return fold_identities(ff, folds) | fold_identities(fp, folds)

    evaluate_cfp = cfp([4, 5])
    evaluate_lfw = fold_identities(lfw, [0]) - evaluate_cfp
    evaluated = evaluate_cfp | evaluate_lfw
    calibrate_cfp = cfp([3]) - evaluated
    fold_10 = sorted(fold_identities(lfw, [1]) - evaluated - calibrate_cfp)
    # Half of fold 10 calibrates and half trains, so both see ordinary photos of the LFW kind.
    calibrate_lfw = {str(p) for p in np.random.default_rng(seed).permutation(fold_10)[: len(fold_10) // 2]}
    train = (cfp([1, 2]) | set(fold_10)) - evaluated - calibrate_cfp - calibrate_lfw
    return {
        "evaluate_cfp": evaluate_cfp,
        "evaluate_lfw": evaluate_lfw,
        "calibrate_cfp": calibrate_cfp,
        "calibrate_lfw": calibrate_lfw,
        "train_cfp": train,
    }


def person_images(
    root: Path, names: set[str] | None = None, max_per_person: int | None = None, seed: int = 0
) -> tuple[list[Path], list[str]]:
    """Every image of root/<person>/ (only the named people when names is given), with its person.

    ``max_per_person`` keeps that many of a person's images, drawn at random (seeded), in file order.
    """
    rng = np.random.default_rng(seed)
    files: list[Path] = []
    labels: list[str] = []
    for person in sorted(p for p in Path(root).iterdir() if p.is_dir() and (names is None or p.name in names)):
        mine = sorted(f for f in person.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if max_per_person is not None and len(mine) > max_per_person:
            keep = np.sort(rng.choice(len(mine), max_per_person, replace=False))
            mine = [mine[i] for i in keep]
        files += mine
        labels += [person.name] * len(mine)
    return files, labels


def mean_directions(directions: FloatArray, labels: Sequence[str]) -> tuple[list[str], FloatArray]:
    """Each person's mean unit direction."""
    lab = np.asarray(labels)
    people = sorted(set(labels))
    means = np.stack([directions[lab == p].mean(axis=0) for p in people])
    return people, means / np.linalg.norm(means, axis=1, keepdims=True)


def lookalikes(celeba: Sequence[str], celeba_means: FloatArray, others: FloatArray, max_cosine: float) -> set[str]:
    """CelebA people whose mean direction reaches max_cosine with any of the other people's means.

    >>> sorted(lookalikes(["a", "b"], np.eye(2), np.array([[1.0, 0.0]]), 0.6))
    ['a']
    """
    nearest = (celeba_means @ others.T).max(axis=1)
    return {p for p, c in zip(celeba, nearest, strict=True) if c >= max_cosine}


def duplicates(people: Sequence[str], means: FloatArray, max_cosine: float) -> set[str]:
    """People whose mean direction reaches max_cosine with another person's of the same set: one person under
    two labels (CelebA has some), whose 'impostor' pairs would be genuine ones. Both labels are returned.

    >>> sorted(duplicates(["a", "b", "c"], np.array([[1.0, 0.0], [0.9, 0.436], [0.0, 1.0]]), 0.6))
    ['a', 'b']
    """
    sim = means @ means.T
    np.fill_diagonal(sim, -1.0)
    return {p for p, row in zip(people, sim, strict=True) if row.max() >= max_cosine}


def celeba_splits(
    photos: set[str], lowres_counts: dict[str, int], dropped: set[str], sizes: SplitSizes
) -> dict[str, set[str]]:
    """CelebA people by role: evaluation and calibration draw low-resolution-only people with two or more crops.

    >>> out = celeba_splits({"p1", "p2"}, {"p1": 1, "l1": 2, "l2": 2, "l3": 1}, {"p2"}, SplitSizes(
    ...     evaluate_lowres=1, calibrate_lowres=1))
    >>> sorted(len(v) for v in out.values()), sorted(set().union(*out.values()))
    ([1, 1, 2], ['l1', 'l2', 'l3', 'p1'])
    """
    rng = np.random.default_rng(sizes.seed)
    lowres_only = sorted(p for p, n in lowres_counts.items() if n >= 2 and p not in photos and p not in dropped)
    order = [str(p) for p in rng.permutation(lowres_only)]
    evaluate = set(order[: sizes.evaluate_lowres])
    calibrate = set(order[sizes.evaluate_lowres : sizes.evaluate_lowres + sizes.calibrate_lowres])
    everyone = (photos | set(lowres_counts)) - dropped
    return {
        "evaluate_lowres": evaluate,
        "calibrate_celeba_lowres": calibrate,
        "train_celeba": everyone - evaluate - calibrate,
    }


def lowres_pair_file(root: Path, people: set[str], out_dir: Path, n_folds: int = 10, seed: int = 0) -> Path:
    """The dev low-resolution pairs: every same-person pair of the people's crops and as many different-person
    pairs drawn at random, in folds that share no person, as a pair file (path_a, path_b, same, fold).

    The people's folders are linked into out_dir so the file's paths are relative to its own folder.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files, labels = person_images(root, people)
    rng = np.random.default_rng(seed)
    names = sorted(set(labels))
    fold_of = {str(p): i % n_folds + 1 for i, p in enumerate(rng.permutation(names))}
    rel = [f"{f.parent.name}/{f.name}" for f in files]
    rows = []
    for fold in range(1, n_folds + 1):
        idx = [i for i, lab in enumerate(labels) if fold_of[lab] == fold]
        same = [(a, b) for k, a in enumerate(idx) for b in idx[k + 1 :] if labels[a] == labels[b]]
        rows += [(rel[a], rel[b], 1, fold) for a, b in same]
        drawn: set[tuple[int, int]] = set()
        while len(drawn) < len(same):
            a, b = (int(x) for x in rng.choice(idx, 2, replace=False))
            if labels[a] != labels[b]:
                drawn.add((min(a, b), max(a, b)))
        rows += [(rel[a], rel[b], 0, fold) for a, b in sorted(drawn)]
    for person in names:
        link = out_dir / person
        if not link.exists():
            link.symlink_to((Path(root) / person).resolve(), target_is_directory=True)
    tsv = out_dir / "lowres_pairs.tsv"
    lines = ["path_a\tpath_b\tsame\tfold", *(f"{a}\t{b}\t{s}\t{f}" for a, b, s, f in rows)]
    tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    logger.info(
        "dev low-resolution pairs: %d same, %d different, %d people", len(rows) // 2, len(rows) // 2, len(names)
    )
    return tsv
