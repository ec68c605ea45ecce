"""Datasets, the InsightFace RecordIO reader, the P x K sampler and the pair protocols."""

import pickle
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.data.datasets import DatasetError, IdentityFolderDataset, SyntheticFaceDataset
from training.data.pairs import load_bin_pairs, load_cfp_pairs, load_lfw_pairs, load_pairs
from training.data.recordio import RecordIODataset
from training.data.samplers import PKBatchSampler


def write_png(path: Path, value: int, size: int = 16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((size, size, 3), value, np.uint8))


def test_identity_folders_with_include_and_exclude(tmp_path: Path) -> None:
    for name, n in (("alice", 3), ("bob", 2), ("carol", 1)):
        for i in range(n):
            write_png(tmp_path / name / f"{i}.png", 10 * i)
    ds = IdentityFolderDataset(tmp_path, min_images=2)
    assert ds.class_names == ["alice", "bob"] and ds.labels.tolist() == [0, 0, 0, 1, 1]
    img, label = ds[3]
    assert img.shape == (16, 16, 3) and label == 1
    assert IdentityFolderDataset(tmp_path, exclude={"alice"}).class_names == ["bob", "carol"]
    assert IdentityFolderDataset(tmp_path, include={"carol"}).class_names == ["carol"]
    with pytest.raises(DatasetError, match="no images under"):
        IdentityFolderDataset(tmp_path, include={"nobody"})


def _record(payload: bytes) -> bytes:
    pad = (4 - len(payload) % 4) % 4
    return struct.pack("<II", 0xCED7230A, len(payload)) + payload + b"\0" * pad


def test_recordio_reader_on_hand_packed_bytes(tmp_path: Path) -> None:
    # Built byte by byte from the documented layout: IRHeader <IfQQ, optional float labels, JPEG bytes.
    images = [np.full((8, 8, 3), v, np.uint8) for v in (30, 90, 150)]
    labels = [7.0, 7.0, 42.0]
    records = [struct.pack("<IfQQ", 2, 0.0, 0, 0) + struct.pack("<ff", 4.0, 44.0)]  # header: images 1..3
    for img, lab in zip(images, labels, strict=True):
        ok, jpg = cv2.imencode(".png", img)
        assert ok
        records.append(struct.pack("<IfQQ", 0, lab, 0, 0) + jpg.tobytes())
    offsets, blob = [], b""
    for rec in records:
        offsets.append(len(blob))
        blob += _record(rec)
    (tmp_path / "train.rec").write_bytes(blob)
    (tmp_path / "train.idx").write_text("".join(f"{i}\t{o}\n" for i, o in enumerate(offsets)))
    ds = RecordIODataset(tmp_path)
    assert len(ds) == 3 and ds.class_names == ["7", "42"] and ds.labels.tolist() == [0, 0, 1]
    img, label = ds[2]
    assert label == 1 and int(img[0, 0, 0]) == 150


def test_pk_sampler_is_deterministic_and_splits_ranks() -> None:
    labels = np.repeat(np.arange(10), [5, 5, 5, 5, 5, 1, 2, 3, 4, 5])
    s = PKBatchSampler(labels, p=4, k=3, seed=1, steps_per_epoch=6)
    batches = s.epoch_batches(0)
    assert len(batches) == 6 and all(len(b) == 12 for b in batches)
    for b in batches:
        ids, counts = np.unique(labels[b], return_counts=True)
        assert len(ids) == 4 and set(counts) == {3}
    assert all(np.array_equal(x, y) for x, y in zip(batches, s.epoch_batches(0), strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(batches, s.epoch_batches(1), strict=True))
    r0 = PKBatchSampler(labels, 4, 3, 1, 6, rank=0, world=2).epoch_batches(0)
    r1 = PKBatchSampler(labels, 4, 3, 1, 6, rank=1, world=2).epoch_batches(0)
    assert [b.tolist() for b in r0 + r1] == [b.tolist() for b in batches[0::2] + batches[1::2]]
    with pytest.raises(ValueError, match="wants 20 identities but the dataset has 10"):
        PKBatchSampler(labels, 20, 2, 0)


def test_synthetic_dataset_is_deterministic() -> None:
    a, b = SyntheticFaceDataset(3, 2, (32, 32), 0.2, seed=5), SyntheticFaceDataset(3, 2, (32, 32), 0.2, seed=5)
    assert np.array_equal(a[4][0], b[4][0]) and a[4][1] == 2


def test_lfw_cfp_and_bin_pair_files(tmp_path: Path) -> None:
    for name, n in (("Ann_A", 2), ("Bo_B", 1), ("Cy_C", 2), ("Di_D", 1)):
        for i in range(1, n + 1):
            write_png(tmp_path / name / f"{name}_{i:04d}.jpg", i)
    (tmp_path / "pairs.txt").write_text("2\t1\nAnn_A\t1\t2\nAnn_A\t1\tBo_B\t1\nCy_C\t1\t2\nCy_C\t2\tDi_D\t1\n")
    lfw = load_lfw_pairs(tmp_path / "pairs.txt")
    assert lfw.same.tolist() == [1, 0, 1, 0] and lfw.folds.tolist() == [0, 0, 1, 1]
    assert len(lfw.images) == 6 and lfw.identities is not None
    ids = lfw.pair_identities()
    assert ids is not None and ids[1].tolist() == ["Ann_A", "Bo_B", "Cy_C", "Di_D"]
    assert load_pairs(str(tmp_path / "pairs.txt")).fingerprint() == lfw.fingerprint()
    (tmp_path / "pairs.tsv").write_text("path_a\tpath_b\tsame\tfold\nAnn_A/Ann_A_0001.jpg\tBo_B/Bo_B_0001.jpg\t0\t3\n")
    cfp = load_cfp_pairs(tmp_path / "pairs.tsv")
    assert cfp.same.tolist() == [0] and cfp.folds.tolist() == [3] and cfp.identities == ["Ann_A", "Bo_B"]
    blobs = [cv2.imencode(".png", np.full((4, 4, 3), v, np.uint8))[1].tobytes() for v in range(8)]
    with open(tmp_path / "x.bin", "wb") as fh:
        pickle.dump((blobs, [True, False, True, False]), fh)
    bins = load_bin_pairs(tmp_path / "x.bin", n_folds=2)
    assert bins.aligned and bins.first.tolist() == [0, 2, 4, 6] and bins.folds.tolist() == [0, 0, 1, 1]
    with pytest.raises(DatasetError, match="cannot tell the protocol"):
        load_pairs(str(tmp_path / "pairs.csv"))
    (tmp_path / "short.txt").write_text("2\t5\nAnn_A\t1\t2\n")
    with pytest.raises(DatasetError, match="header promises 20 pairs, found 1"):
        load_lfw_pairs(tmp_path / "short.txt")
