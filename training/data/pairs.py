"""Verification pair protocols: LFW ``pairs.txt``, the CFP tab-separated pair files, InsightFace ``.bin`` sets.

A PairSet lists its images once (paths, or encoded bytes for .bin), then pairs as index arrays with the
same/different label, the protocol fold and, where known, each image's identity (for the identity-level
bootstrap and the retrieval metrics).
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facecore.protocols import assign_folds
from training.data.datasets import DatasetError

IntArray = npt.NDArray[np.int64]


@dataclass
class PairSet:
    """Images and labelled pairs of one protocol."""

    name: str
    images: list[Path] | list[bytes]
    identities: list[str] | None
    aligned: bool
    first: IntArray
    second: IntArray
    same: IntArray
    folds: IntArray

    @property
    def n_pairs(self) -> int:
        """Number of pairs."""
        return int(self.same.size)

    def fingerprint(self) -> str:
        """sha256 (first 16 hex) of the pair list and every image's bytes."""
        digest = hashlib.sha256()
        for arr in (self.first, self.second, self.same, self.folds):
            digest.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
        for img in self.images:
            digest.update(img if isinstance(img, bytes) else Path(img).read_bytes())
        return digest.hexdigest()[:16]

    def subset(self, mask: npt.NDArray[np.bool_], name: str | None = None) -> PairSet:
        """The pairs selected by a boolean mask (images kept as they are)."""
        return PairSet(
            name=name or self.name,
            images=self.images,
            identities=self.identities,
            aligned=self.aligned,
            first=self.first[mask],
            second=self.second[mask],
            same=self.same[mask],
            folds=self.folds[mask],
        )

    def pair_identities(self) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.str_]] | None:
        """(identity of the first image, of the second) per pair, when identities are known."""
        if self.identities is None:
            return None
        ids = np.asarray(self.identities)
        return ids[self.first], ids[self.second]


class _Builder:
    def __init__(self) -> None:
        self.index: dict[Path, int] = {}
        self.images: list[Path] = []
        self.identities: list[str] = []

    def add(self, path: Path, identity: str) -> int:
        if not path.is_file():
            raise DatasetError(f"pair image {path} does not exist")
        if path not in self.index:
            self.index[path] = len(self.images)
            self.images.append(path)
            self.identities.append(identity)
        return self.index[path]

    def pair_set(self, name: str, first: list[int], second: list[int], same: list[int], folds: list[int]) -> PairSet:
        return PairSet(
            name=name,
            images=self.images,
            identities=self.identities,
            aligned=False,
            first=np.asarray(first, dtype=np.int64),
            second=np.asarray(second, dtype=np.int64),
            same=np.asarray(same, dtype=np.int64),
            folds=np.asarray(folds, dtype=np.int64),
        )


def load_lfw_pairs(pairs_file: Path, root: Path | None = None) -> PairSet:
    """LFW's format: a header 'n_folds<TAB>n' then per fold n same lines and n different lines."""
    pairs_file = Path(pairs_file)
    root = Path(root) if root else pairs_file.parent
    lines = [ln.split() for ln in pairs_file.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines or len(lines[0]) != 2:
        raise DatasetError(f"{pairs_file}: the first line must be '<folds> <pairs per class per fold>'")
    n_folds, per = int(lines[0][0]), int(lines[0][1])
    body = lines[1:]
    if len(body) != n_folds * 2 * per:
        raise DatasetError(f"{pairs_file}: header promises {n_folds * 2 * per} pairs, found {len(body)}")
    b = _Builder()
    first, second, same = [], [], []

    def path(name: str, num: str) -> Path:
        return root / name / f"{name}_{int(num):04d}.jpg"

    for fields in body:
        if len(fields) == 3:
            name, i, j = fields
            first.append(b.add(path(name, i), name))
            second.append(b.add(path(name, j), name))
            same.append(1)
        elif len(fields) == 4:
            na, i, nb, j = fields
            first.append(b.add(path(na, i), na))
            second.append(b.add(path(nb, j), nb))
            same.append(0)
        else:
            raise DatasetError(f"{pairs_file}: bad pair line {' '.join(fields)!r}")
    folds = np.arange(len(body)) // (2 * per)
    return b.pair_set(f"lfw:{pairs_file.name}", first, second, same, folds.tolist())


def load_cfp_pairs(tsv: Path, root: Path | None = None) -> PairSet:
    """Tab-separated 'path_a path_b same fold' (paths relative to the CFP root, identity = first folder)."""
    tsv = Path(tsv)
    root = Path(root) if root else tsv.parent
    rows = [ln.split("\t") for ln in tsv.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if rows and rows[0][:2] == ["path_a", "path_b"]:
        rows = rows[1:]
    b = _Builder()
    first, second, same, folds = [], [], [], []
    for row in rows:
        if len(row) != 4:
            raise DatasetError(f"{tsv}: expected 4 tab-separated fields, got {row!r}")
        pa, pb, s, f = row
        first.append(b.add(root / pa, Path(pa).parts[0]))
        second.append(b.add(root / pb, Path(pb).parts[0]))
        same.append(int(s))
        folds.append(int(f))
    return b.pair_set(f"cfp:{tsv.name}", first, second, same, folds)


def load_bin_pairs(path: Path, n_folds: int = 10) -> PairSet:
    """InsightFace .bin: a pickle of (encoded aligned images, is-same flags), image 2i paired with 2i+1."""
    with open(path, "rb") as fh:
        bins, issame = pickle.load(fh, encoding="bytes")  # noqa: S301 - a local evaluation file the user names
    images = [bytes(x) for x in bins]
    same = np.asarray([int(bool(x)) for x in issame], dtype=np.int64)
    if len(images) != 2 * len(same):
        raise DatasetError(f"{path}: {len(images)} images for {len(same)} pairs (expected two per pair)")
    idx = np.arange(len(same))
    return PairSet(
        name=f"bin:{Path(path).name}",
        images=images,
        identities=None,
        aligned=True,
        first=2 * idx,
        second=2 * idx + 1,
        same=same,
        folds=assign_folds(len(same), n_folds),
    )


def load_pairs(spec: str) -> PairSet:
    """'lfw:FILE', 'cfp:FILE', 'bin:FILE', or a bare file recognised by its suffix (.txt, .tsv, .bin)."""
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in ("lfw", "cfp", "bin"):
        rest = spec
        suffix = Path(spec).suffix
        kind = {".txt": "lfw", ".tsv": "cfp", ".bin": "bin"}.get(suffix, "")
        if not kind:
            raise DatasetError(f"cannot tell the protocol of {spec!r}; write lfw:FILE, cfp:FILE or bin:FILE")
    path = Path(rest)
    if not path.is_file():
        raise DatasetError(f"no pair file at {path}")
    if kind == "lfw":
        return load_lfw_pairs(path)
    if kind == "cfp":
        return load_cfp_pairs(path)
    return load_bin_pairs(path)
