"""Backbone registry: ``create_backbone(name, embedding_dim=512, input_size=..., head_scale=1.0)``.

Every backbone is a trunk producing (N, F) features followed by a linear embedding head that outputs the
raw embedding e; nothing normalises it, so ||e|| is free to carry kappa.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from training.backbones.layers import EmbeddingNet

TrunkFactory = Callable[[int], nn.Module]

# name -> (trunk factory taking the input size, the input size the architecture is made for)
_REGISTRY: dict[str, tuple[TrunkFactory, int]] = {}


def register_backbone(name: str, factory: TrunkFactory, default_input_size: int) -> None:
    """Add a trunk factory under a stable name (recorded in manifests)."""
    if name in _REGISTRY:
        raise ValueError(f"backbone {name!r} is already registered")
    _REGISTRY[name] = (factory, default_input_size)


def _register_builtins() -> None:
    if _REGISTRY:
        return
    from functools import partial

    from training.backbones.inception_resnet_v1 import InceptionResNetV1TapsTrunk, InceptionResNetV1Trunk
    from training.backbones.iresnet import IRESNET_LAYERS, IResNetTrunk
    from training.backbones.mobilefacenet import MobileFaceNetTrunk
    from training.backbones.tiny import TinyTapsTrunk, TinyTrunk

    for name, layers in IRESNET_LAYERS.items():
        register_backbone(name, partial(IResNetTrunk, layers), 112)
    register_backbone("mobilefacenet", MobileFaceNetTrunk, 112)
    register_backbone("inception_resnet_v1", InceptionResNetV1Trunk, 160)
    register_backbone("inception_resnet_v1_taps", InceptionResNetV1TapsTrunk, 160)
    register_backbone("tiny", TinyTrunk, 112)
    register_backbone("tiny_taps", TinyTapsTrunk, 112)


def list_backbones() -> list[str]:
    """Registered backbone names."""
    _register_builtins()
    return sorted(_REGISTRY)


def default_input_size(name: str) -> int:
    """The input size a backbone is made for."""
    _register_builtins()
    _check(name)
    return _REGISTRY[name][1]


def _check(name: str) -> None:
    if name not in _REGISTRY:
        raise ValueError(f"unknown backbone {name!r}; registered: {', '.join(sorted(_REGISTRY))}")


def create_backbone(
    name: str,
    embedding_dim: int = 512,
    input_size: int | None = None,
    head_scale: float = 1.0,
    dropout: float = 0.0,
    head: str = "linear",
    kappa_init: float = 20.0,
) -> EmbeddingNet:
    """Build a registered backbone with its embedding head."""
    _register_builtins()
    _check(name)
    factory, size = _REGISTRY[name]
    trunk = factory(input_size or size)
    feature_dim = int(getattr(trunk, "feature_dim"))  # noqa: B009 - every trunk sets it
    # A trunk with taps says how many of its features are the ones directions are read from.
    direction_dim = int(getattr(trunk, "direction_dim", feature_dim))
    return EmbeddingNet(trunk, feature_dim, embedding_dim, head_scale, dropout, head, kappa_init, direction_dim)


__all__ = ["EmbeddingNet", "create_backbone", "default_input_size", "list_backbones", "register_backbone"]
