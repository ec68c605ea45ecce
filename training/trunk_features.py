"""A frozen trunk's features of every training image and of its mirror, computed once and kept on disk.

On a CPU the trunk runs through onnxruntime, several times faster than torch eager here, so a large pretrained
trunk over tens of thousands of (degraded) images takes minutes, not hours; on a GPU torch runs it. The result
is cached under the run directory, keyed by the trunk's weights and the dataset's content, so a resumed or
repeated run skips it.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from tqdm import tqdm

from training.data.datasets import FaceDataset

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
BatchFn = Callable[[np.ndarray], torch.Tensor]


def dataset_fingerprint(dataset: FaceDataset) -> str:
    """What the images are: their files (or count), labels and, for degraded views, how they are degraded."""
    digest = hashlib.sha256(f"{len(dataset)}|{'|'.join(dataset.class_names)}".encode())
    digest.update(np.ascontiguousarray(dataset.labels).tobytes())
    base = getattr(dataset, "base", dataset)
    config = getattr(dataset, "config", None)
    if config is not None:
        digest.update(config.model_dump_json().encode())
    for path in getattr(base, "paths", []):
        digest.update(f"{path}:{Path(path).stat().st_size}".encode())
    return digest.hexdigest()[:20]


def item_keys(dataset: FaceDataset) -> list[str]:
    """A key per item that stays the same when other images join or leave the dataset: the file (and its size)
    and, for degraded views, the copy number. Datasets without files key items by the whole dataset."""
    base = getattr(dataset, "base", dataset)
    per_image = int(getattr(dataset, "per_image", 1))
    paths = getattr(base, "paths", None)
    if paths is None:
        fingerprint = dataset_fingerprint(dataset)
        return [f"{fingerprint}:{i}" for i in range(len(dataset))]
    files = [f"{Path(p).resolve()}:{Path(p).stat().st_size}" for p in paths]
    return [f"{files[i // per_image]}#{i % per_image}" for i in range(len(dataset))]


def _views_fingerprint(dataset: FaceDataset) -> str:
    config = getattr(dataset, "config", None)
    text = "clean" if config is None else config.model_dump_json()
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def trunk_fingerprint(trunk: nn.Module) -> str:
    """The trunk's class and weights."""
    digest = hashlib.sha256(type(trunk).__name__.encode())
    for name, tensor in trunk.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def onnx_runner(trunk: nn.Module, sample: torch.Tensor, threads: int) -> Callable[[torch.Tensor], torch.Tensor]:
    import onnxruntime as ort

    buffer = io.BytesIO()
    torch.onnx.export(
        trunk,
        (sample,),
        buffer,  # type: ignore[arg-type]  # torch writes to any binary file object
        input_names=["images"],
        output_names=["features"],
        dynamic_axes={"images": {0: "n"}, "features": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> torch.Tensor:
        (out,) = session.run(None, {"images": np.ascontiguousarray(x.numpy(), dtype=np.float32)})
        return torch.from_numpy(out)

    return run


class FeatureStore:
    """Features on disk keyed by item (training.trunk_features.item_keys): grows as new images are seen."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.keys: list[str] = []
        self.plain = np.zeros((0, 0), np.float32)
        self.mirrored = np.zeros((0, 0), np.float32)
        if path is not None and path.is_file():
            with np.load(path) as data:
                self.keys = [str(k) for k in data["keys"]]
                self.plain, self.mirrored = data["plain"], data["mirrored"]
        self.index = {k: i for i, k in enumerate(self.keys)}

    def missing(self, keys: list[str]) -> npt.NDArray[np.int64]:
        """Positions of the keys not stored yet."""
        return np.array([i for i, k in enumerate(keys) if k not in self.index], dtype=np.int64)

    def add(self, keys: list[str], plain: FloatArray, mirrored: FloatArray) -> None:
        """Store new items and write the file (atomically)."""
        self.plain = np.concatenate([self.plain, plain]) if self.keys else plain
        self.mirrored = np.concatenate([self.mirrored, mirrored]) if self.keys else mirrored
        self.index |= {k: len(self.keys) + i for i, k in enumerate(keys)}
        self.keys += keys
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp.npz")
            np.savez(tmp, keys=np.asarray(self.keys), plain=self.plain, mirrored=self.mirrored)
            tmp.replace(self.path)

    def rows(self, keys: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(plain, mirrored) of the keys, in their order."""
        rows = np.array([self.index[k] for k in keys], dtype=np.int64)
        return torch.from_numpy(self.plain[rows]), torch.from_numpy(self.mirrored[rows])


def compute_trunk_features(
    trunk: nn.Module,
    dataset: FaceDataset,
    batch_fn: BatchFn,
    batch_size: int,
    device: torch.device,
    cache_dir: Path | None,
    threads: int = 0,
    show_progress: bool = True,
    mirror: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(plain, mirrored) features (N, F) of every item; items the cache holds for this trunk are not recomputed.

    With ``mirror=False`` only the plain features are computed (the mirrored ones are then zeros).
    """
    trunk.eval()
    keys = item_keys(dataset)
    name = f"features_{trunk_fingerprint(trunk)}_{_views_fingerprint(dataset)}{'' if mirror else '_plain'}.npz"
    store = FeatureStore(Path(cache_dir) / name if cache_dir is not None else None)
    missing = store.missing(keys)
    logger.info(
        "trunk features: %d of %d items cached, %d to compute", len(keys) - missing.size, len(keys), missing.size
    )
    if missing.size:
        run = _runner(trunk, batch_fn(missing[:2]), device, threads)
        plain, mirrored = [], []
        batches = [missing[i : i + batch_size] for i in range(0, missing.size, batch_size)]
        for idx in tqdm(batches, desc="trunk features", disable=not show_progress or None):
            x = batch_fn(idx)
            plain.append(run(x).numpy())
            mirrored.append(run(x.flip(-1).contiguous()).numpy() if mirror else np.zeros_like(plain[-1]))
        store.add([keys[i] for i in missing], np.concatenate(plain), np.concatenate(mirrored))
    return store.rows(keys)


def _runner(
    trunk: nn.Module, sample: torch.Tensor, device: torch.device, threads: int
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The trunk as a batch function: onnxruntime on a CPU, torch on an accelerator."""
    if device.type == "cpu":
        return onnx_runner(trunk, sample, threads)

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out: torch.Tensor = trunk(x.to(device)).float().cpu()
        return out

    return run
