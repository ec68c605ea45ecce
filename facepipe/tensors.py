"""Turn face crops into the model's input tensor exactly as its manifest states."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from facecore.manifest import PreprocessSpec
from facepipe.decode import RgbImage

Tensor = npt.NDArray[np.float32]


def to_input_tensor(crops: Sequence[RgbImage], spec: PreprocessSpec) -> Tensor:
    """(N, 3, H, W) float32 with x = (pixel - mean) / std, channels in the manifest's colour order."""
    if not crops:
        raise ValueError("to_input_tensor needs at least one crop")
    batch = np.stack(crops).astype(np.float32)
    if batch.shape[1:] != (*spec.input_size, 3):
        raise ValueError(f"crops have shape {batch.shape[1:]}; the model expects {(*spec.input_size, 3)}")
    if spec.color_order == "BGR":
        batch = batch[..., ::-1]
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(((batch - mean) / std).transpose(0, 3, 1, 2))
