"""A trained model rebuilt from its checkpoint (the config travels inside it), ready for inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from training.backbones import EmbeddingNet
from training.checkpoint import load_checkpoint
from training.config import TrainConfig
from training.setup import build_model


def load_trained_model(path: Path) -> tuple[EmbeddingNet, TrainConfig, dict[str, object]]:
    """(model in eval mode, its training config, the raw checkpoint) from a .pt written by `dprime train`."""
    state = load_checkpoint(Path(path))
    config = TrainConfig.model_validate(state["config"])
    config = config.model_copy(update={"model": config.model.model_copy(update={"init_checkpoint": None})})
    model = build_model(config)
    model.load_state_dict(state["model"])
    model.eval()
    return model, config, state


class TorchBatchEmbedder:
    """Raw embeddings from a checkpoint's model (eval mode, no grad)."""

    def __init__(self, path: Path, device: str = "cpu") -> None:
        self.model, self.config, self.state = load_trained_model(path)
        self.model.to(device)
        self.device = device
        self.preprocess = self.config.data.preprocess

    def __call__(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """(N, 3, H, W) -> (N, D)."""
        with torch.no_grad():
            out = self.model(torch.from_numpy(np.ascontiguousarray(batch)).to(self.device))
        return np.asarray(out.float().cpu().numpy(), dtype=np.float32)
