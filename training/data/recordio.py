"""InsightFace RecordIO (train.rec + train.idx, as MS1M and Glint are distributed), read without mxnet.

Record framing (dmlc RecordIO): uint32 magic 0xced7230a, uint32 lrec (upper 3 bits: continuation flag, lower
29: length), payload, zero padding to 4 bytes. Payload: IRHeader ``<IfQQ`` (flag, label, id, id2); when flag
> 0 a float32 label array of that length follows; then the JPEG bytes. Record 0 is a header whose label
holds the image index range [1, end); the idx file maps record index to byte offset, one "idx\\toffset" per line.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import numpy.typing as npt

from training.data.datasets import DatasetError, RgbImage

MAGIC = 0xCED7230A
_HEADER = struct.Struct("<IfQQ")


def read_index(idx_path: Path) -> dict[int, int]:
    """Record index -> byte offset."""
    out = {}
    for line in Path(idx_path).read_text(encoding="ascii").splitlines():
        if line.strip():
            key, offset = line.split("\t")
            out[int(key)] = int(offset)
    return out


def read_record(fh: object, offset: int) -> bytes:
    """Payload of the record at offset (continuation chunks joined)."""
    f = fh  # a binary file object
    f.seek(offset)  # type: ignore[attr-defined]
    parts = []
    while True:
        head = f.read(8)  # type: ignore[attr-defined]
        if len(head) < 8:
            raise DatasetError(f"truncated record at offset {offset}")
        magic, lrec = struct.unpack("<II", head)
        if magic != MAGIC:
            raise DatasetError(f"bad RecordIO magic {magic:#x} at offset {offset}")
        cflag, length = lrec >> 29, lrec & ((1 << 29) - 1)
        parts.append(f.read(length))  # type: ignore[attr-defined]
        f.read((4 - length % 4) % 4)  # type: ignore[attr-defined]
        if cflag in (0, 3):
            return b"".join(parts)


def unpack(payload: bytes) -> tuple[npt.NDArray[np.float32], bytes]:
    """(labels, image bytes) of one payload."""
    flag, label, _, _ = _HEADER.unpack_from(payload, 0)
    pos = _HEADER.size
    if flag > 0:
        labels = np.frombuffer(payload, dtype=np.float32, count=flag, offset=pos).copy()
        pos += 4 * flag
    else:
        labels = np.array([label], dtype=np.float32)
    return labels, payload[pos:]


class RecordIODataset:
    """Images and labels of an InsightFace ``train.rec`` / ``train.idx`` pair."""

    def __init__(self, root: Path) -> None:
        root = Path(root)
        self.rec_path, idx_path = root / "train.rec", root / "train.idx"
        if not self.rec_path.is_file() or not idx_path.is_file():
            raise DatasetError(f"{root} needs train.rec and train.idx")
        offsets = read_index(idx_path)
        with open(self.rec_path, "rb") as fh:
            header, _ = unpack(read_record(fh, offsets[0]))
            if header.size >= 2 and header[0] > 0:
                keys = list(range(1, int(header[0])))
            else:
                keys = sorted(k for k in offsets if k != 0)
            self._offsets = [offsets[k] for k in keys]
            raw = [int(unpack(read_record(fh, off))[0][0]) for off in self._offsets]
        self.class_names = [str(x) for x in sorted(set(raw))]
        remap = {int(name): i for i, name in enumerate(self.class_names)}
        self.labels = np.asarray([remap[x] for x in raw], dtype=np.int64)
        self._fh: BinaryIO | None = None

    def __len__(self) -> int:
        """Number of images."""
        return len(self._offsets)

    def __getitem__(self, index: int) -> tuple[RgbImage, int]:
        """Decoded RGB image and label (the file is opened lazily, once per process)."""
        if self._fh is None:
            self._fh = open(self.rec_path, "rb")  # noqa: SIM115 - kept open for the dataset's life
        _, data = unpack(read_record(self._fh, self._offsets[index]))
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise DatasetError(f"record {index} of {self.rec_path} is not a decodable image")
        return np.ascontiguousarray(img[:, :, ::-1]), int(self.labels[index])
