"""Each person's mean FaceNet direction over their aligned crops: who in CelebA looks like an LFW or CFP person.

FaceNet itself (its frozen trunk and bottleneck, before any training of ours) judges the likeness, so the split
does not depend on the model it is made for. The trunk runs through onnxruntime; the features are cached.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from training.backbones import create_backbone
from training.checkpoint import load_checkpoint
from training.data.datasets import IdentityFolderDataset, read_rgb
from training.recipes.splits import mean_directions
from training.trunk_features import compute_trunk_features

FloatArray = npt.NDArray[np.float64]
BATCH = 64


def facenet_means(facenet_checkpoint: Path, aligned: Path, cache: Path) -> tuple[list[str], FloatArray]:
    """(people, unit mean directions) of every identity folder under ``aligned``."""
    from facepipe.tensors import to_input_tensor
    from training.config import default_preprocess

    model = create_backbone("inception_resnet_v1", 512, input_size=160, head="linear")
    # The checkpoint also carries a vmf head's copy of the bottleneck; the linear head is FaceNet's own.
    model.load_state_dict(load_checkpoint(facenet_checkpoint)["model"], strict=False)
    dataset = IdentityFolderDataset(aligned)
    spec = default_preprocess().model_copy(update={"input_size": (160, 160)})

    def batch(idx: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(to_input_tensor([read_rgb(dataset.paths[int(i)]) for i in idx], spec))

    plain, _ = compute_trunk_features(model.trunk, dataset, batch, BATCH, torch.device("cpu"), cache, mirror=False)
    with torch.no_grad():
        e = torch.nn.functional.normalize(model.head(plain), dim=1).double().numpy()
    labels = [dataset.class_names[int(i)] for i in dataset.labels]
    return mean_directions(e, labels)
