"""Does fine-tuning FaceNet's last block pay? TAR at FAR 1e-3 on the held-out people of bench/accuracy.py.

The bundled recipe keeps FaceNet's trunk frozen and trains a direction map on its pooled features. This probe
also trains the trunk's last block (block8: 1.6 M weights on a 3 x 3 grid at 160 px) with the bottleneck, by a
cosine softmax with a margin over the training people of the bundled model's run record (clean photos, a face or
its mirror at random). Everything below the block runs once through the face path (the manifest's detector and
crop, onnxruntime) and is kept in the cache, so a variant trains in about a minute on two cores.

Variants: FaceNet frozen (no training); the bottleneck alone; block8 and the bottleneck at two learning rates.
Each is measured beside the bundled model on every pair of the held-out LFW, CFP and low-resolution people
(bench/accuracy.py's TAR rows, with identity-bootstrap intervals).

Usage: python bench/last_block.py   (writes bench/results/last_block.*)
    make bench-last-block
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.accuracy import Embed, ours, tar_rows  # noqa: E402
from bench.common import RESULTS, add_data_arguments, markdown_table, write_json  # noqa: E402
from bench.heldout import active_held_out  # noqa: E402

logger = logging.getLogger("bench.last_block")
GRID = 1792 * 3 * 3  # block8's input at 160 px, per view


@dataclass(frozen=True)
class Variant:
    """One way of training the top of the trunk."""

    name: str
    lr: float
    train_block: bool
    epochs: int = 6
    margin: float = 0.2
    scale: float = 30.0
    batch: int = 256
    proxy_lr_mult: float = 100.0


VARIANTS = (
    Variant("bottleneck only", 1e-4, train_block=False),
    Variant("block8 + bottleneck, lr 3e-5", 3e-5, train_block=True),
    Variant("block8 + bottleneck, lr 1e-4", 1e-4, train_block=True),
)


def below_block8(model_dir: Path, cache: Path) -> Callable[[Sequence[Path]], npt.NDArray[np.float16]]:
    """Maps of every photo at block8's input, face and mirror side by side (N, 2 * GRID); NaN rows: no face."""
    import torch

    from facecore.manifest import load_manifest
    from facepipe.detectors import spec_for_record
    from training.backbones.inception_resnet_v1 import InceptionResNetV1Trunk
    from training.embedding import detect_all, embed_images
    from training.facenet_import import load_facenet_trunk, packaged_graph_path, read_constants
    from training.trunk_features import onnx_runner

    manifest = load_manifest(model_dir)
    assert manifest.detector is not None
    spec = spec_for_record(manifest.detector)
    trunk = InceptionResNetV1Trunk().eval()
    load_facenet_trunk(trunk, read_constants(packaged_graph_path()))
    below = torch.nn.Sequential(
        trunk.conv2d_1a, trunk.conv2d_2a, trunk.conv2d_2b, trunk.maxpool_3a, trunk.conv2d_3b, trunk.conv2d_4a,
        trunk.conv2d_4b, trunk.repeat_1, trunk.mixed_6a, trunk.repeat_2, trunk.mixed_7a, trunk.repeat_3,
    )  # fmt: skip
    runner = onnx_runner(below, torch.zeros(2, 3, 160, 160), 0)

    class Maps:
        preprocess = manifest.preprocess

        def __call__(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
            views = [batch, np.ascontiguousarray(batch[..., ::-1])]
            out = [runner(torch.from_numpy(np.ascontiguousarray(v))).numpy().reshape(len(batch), -1) for v in views]
            return np.concatenate(out, axis=1)

    def run(paths: Sequence[Path]) -> npt.NDArray[np.float16]:
        digest = hashlib.sha256(f"{manifest.model_sha256}|{spec.model_dump_json()}".encode())
        for p in paths:
            digest.update(f"{Path(p).resolve()}:{Path(p).stat().st_size}".encode())
        cached = cache / f"block8_inputs_{digest.hexdigest()[:20]}.npy"
        if cached.is_file():
            loaded: npt.NDArray[np.float16] = np.load(cached)
            return loaded
        maps = embed_images(paths, Maps(), detect_all(paths, spec, cache)).astype(np.float16)
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.save(cached, maps)
        return maps

    return run


def top_model() -> Any:
    """FaceNet's block8 and bottleneck: (N, 1792, 3, 3) -> raw 512-d embeddings."""
    import torch

    from training.backbones.inception_resnet_v1 import InceptionResNetV1Trunk
    from training.facenet_import import bottleneck_linear, load_facenet_trunk, packaged_graph_path, read_constants

    consts = read_constants(packaged_graph_path())
    trunk = InceptionResNetV1Trunk().eval()
    load_facenet_trunk(trunk, consts)

    class Top(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = trunk.block8
            self.linear = bottleneck_linear(consts)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.linear(self.block(x).mean(dim=(2, 3)))
            return out

    return Top()


def directions(top: Any, maps: npt.NDArray[np.float16]) -> npt.NDArray[np.float64]:
    """Unit directions of each photo, face and mirror averaged as the service does (NaN rows stay NaN)."""
    import torch

    out = np.full((maps.shape[0], 512), np.nan)
    rows = np.nonzero(np.isfinite(maps[:, 0]))[0]
    top.eval()
    with torch.inference_mode():
        for start in range(0, rows.size, 512):
            idx = rows[start : start + 512]
            x = torch.from_numpy(maps[idx].astype(np.float32)).view(-1, 2, 1792, 3, 3)
            e = 0.5 * (top(x[:, 0]) + top(x[:, 1]))
            out[idx] = torch.nn.functional.normalize(e, dim=1).numpy()
    return out


def train(variant: Variant, maps: npt.NDArray[np.float16], labels: npt.NDArray[np.int64], seed: int = 0) -> Any:
    """The top trained on the photos' maps by a cosine softmax whose proxies start at each person's mean direction."""
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    torch.manual_seed(seed)
    top = top_model()
    start = directions(top, maps)
    n_classes = int(labels.max()) + 1
    proxies = torch.nn.Parameter(
        F.normalize(torch.from_numpy(np.stack([start[labels == c].mean(0) for c in range(n_classes)])).float(), dim=1)
    )
    groups = [{"params": top.linear.parameters(), "lr": variant.lr}]
    groups.append({"params": [proxies], "lr": variant.lr * variant.proxy_lr_mult})
    if variant.train_block:
        groups.append({"params": top.block.parameters(), "lr": variant.lr})
    else:
        top.block.requires_grad_(False)
    bases = [g["lr"] for g in groups]
    opt = torch.optim.AdamW(groups, weight_decay=5e-4)
    rng = np.random.default_rng(seed)
    per_epoch = math.ceil(labels.size / variant.batch)
    total = variant.epochs * per_epoch
    step = 0
    for _ in tqdm(range(variant.epochs), desc=variant.name, disable=None):
        top.train()
        top.block.eval()  # batch-norm statistics stay FaceNet's: a batch of 256 people is no better estimate
        order = rng.permutation(labels.size)
        for b in range(per_epoch):
            idx = order[b * variant.batch : (b + 1) * variant.batch]
            views = torch.from_numpy(maps[idx].astype(np.float32)).view(-1, 2, 1792, 3, 3)
            x = views[torch.arange(idx.size), torch.from_numpy(rng.integers(0, 2, idx.size))]
            y = torch.from_numpy(labels[idx])
            for g, base in zip(opt.param_groups, bases, strict=True):
                g["lr"] = base * 0.5 * (1 + math.cos(math.pi * step / total))
            cos = F.normalize(top(x), dim=1) @ F.normalize(proxies, dim=1).T
            loss = F.cross_entropy(variant.scale * (cos - variant.margin * F.one_hot(y, n_classes)), y)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            step += 1
    return top


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser, REPO)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    from training.recipes.default_model import sources
    from training.recipes.splits import person_images

    model_dir, record, held = active_held_out(args.models_dir, args.data, args.cache)
    splits: dict[str, list[str]] = record["splits"]  # type: ignore[assignment]
    files: list[Path] = []
    names: list[str] = []
    for root in sources(args.data).values():
        f, lab = person_images(root, set(splits["train"]))
        files, names = files + f, names + lab
    maps_of = below_block8(model_dir, args.cache)
    maps = maps_of(files)
    found = np.isfinite(maps[:, 0])
    labels = np.unique(np.asarray(names)[found], return_inverse=True)[1].astype(np.int64)
    logger.info("training photos: %d of %d people", int(found.sum()), int(labels.max()) + 1)

    def embed_with(top: Any) -> Embed:
        def run(paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray | None]:
            return directions(top, maps_of(paths)), None

        return run

    models: dict[str, Embed] = {f"dprime {model_dir.name}": ours(model_dir, args.cache)}
    models["FaceNet frozen, our crop"] = embed_with(top_model())
    for variant in VARIANTS:
        models[variant.name] = embed_with(train(variant, maps[found], labels))
    rows: list[dict[str, Any]] = []
    for name, (gallery, people) in held.galleries.items():
        rows += tar_rows(name, gallery, people, models)
    columns = ["benchmark", "model", "pairs", "tar_at_far_1e-3", "tar_95", "d_prime"]
    table = markdown_table(rows, columns)
    write_json("last_block", {"model": model_dir.name, "variants": [asdict(v) for v in VARIANTS], "rows": rows})
    text = (
        f"Training photos: {int(found.sum())} of {int(labels.max()) + 1} people (the {model_dir.name} run's train "
        f"role). TAR at FAR 1e-3 over every pair of the held-out people.\n\n{table}"
    )
    (RESULTS / "last_block.md").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
