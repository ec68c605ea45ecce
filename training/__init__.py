"""training: the offline PyTorch pipeline (align, datasets, backbones, losses, trainer, evaluate, export)."""
