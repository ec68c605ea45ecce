"""Training configuration: typed, layered (base.yaml <- experiment diff <- --set overrides), written back out.

An experiment file names its parent with ``base: <file>`` (relative to itself); values merge recursively,
so an experiment states only what differs. ``--set a.b=c`` overrides parse their value as YAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from facecore.errors import DprimeError
from facecore.manifest import PreprocessSpec, TemplateCrop
from training.degrade import DegradeConfig


class ConfigError(DprimeError):
    """A training config file or override is invalid; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SyntheticConfig(_Section):
    """A generated dataset of class patterns plus noise (smoke tests, CI)."""

    num_classes: int = Field(default=12, ge=2)
    images_per_class: int = Field(default=8, ge=2)
    noise: float = Field(default=0.35, ge=0)


def default_preprocess() -> PreprocessSpec:
    """ArcFace-style input: 112 x 112 template crop, RGB, (x - 127.5) / 128."""
    return PreprocessSpec(
        input_size=(112, 112),
        color_order="RGB",
        mean=(127.5, 127.5, 127.5),
        std=(128.0, 128.0, 128.0),
        crop=TemplateCrop(template="arcface_112"),
    )


class DataConfig(_Section):
    """Where images come from and how batches are drawn."""

    kind: Literal["folders", "recordio", "synthetic"] = "folders"
    root: Path | None = Field(default=None, description="aligned identity folders, or the folder of train.rec")
    exclude_identities: Path | None = Field(default=None, description="text file of identity names to leave out")
    include_identities: Path | None = Field(default=None, description="text file: train only on these identities")
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    preprocess: PreprocessSpec = Field(default_factory=default_preprocess)
    identities_per_batch: int = Field(default=16, ge=2)
    images_per_identity: int = Field(default=4, ge=1)
    flip: bool = True
    num_workers: int = Field(default=0, ge=0)
    degrade: DegradeConfig = Field(default_factory=DegradeConfig, description="degraded copies of every image")
    direction_views: Literal["all", "clean"] = Field(
        default="all",
        description="the items batches draw from: every copy, or only the clean photos (degraded copies then "
        "reach only the kappa fit)",
    )


class ModelConfig(_Section):
    """The backbone and its embedding head."""

    backbone: str = "iresnet18"
    embedding_dim: int = Field(default=512, ge=3)
    head_scale: float = Field(default=1.0, gt=0, description="initial-weight multiplier of the head (sets kappa)")
    dropout: float = Field(default=0.0, ge=0, lt=1)
    init_checkpoint: Path | None = Field(default=None, description="model weights to start from (.pt)")
    freeze_trunk: bool = Field(default=False, description="train only the head (and the loss)")
    freeze_direction: bool = Field(default=False, description="vmf heads: train kappa only, keep directions")
    head: Literal["linear", "vmf", "vmf_mirror", "vmf_evidence"] = Field(
        default="linear",
        description="vmf: separate direction and kappa maps; vmf_mirror: embeds the face and its mirror, kappa from "
        "their agreement; vmf_evidence: vmf_mirror plus image evidence read from a ..._taps trunk's earlier stages",
    )
    kappa_init: float = Field(default=20.0, gt=1, description="vmf head: the kappa every face starts at")


class LossConfig(_Section):
    """The loss and its parameters."""

    name: str = "pd_vmf"
    params: dict[str, Any] = Field(default_factory=dict)
    warm_start: bool = Field(default=True, description="initialise proxies from class-mean embeddings")


class OptimConfig(_Section):
    """Optimiser, schedule and precision."""

    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=5e-4, ge=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    proxy_lr_mult: float = Field(default=100.0, gt=0)
    kappa_lr_mult: float = Field(default=100.0, gt=0)
    temperature_lr_mult: float = Field(default=10.0, gt=0)
    kappa_head_lr_mult: float = Field(default=1.0, gt=0, description="vmf head: LR multiplier of its kappa MLP")
    epochs: int = Field(default=10, ge=1)
    steps_per_epoch: int | None = Field(default=None, ge=1, description="default: one pass over the images")
    warmup_epochs: float = Field(default=1.0, ge=0)
    grad_clip: float | None = Field(default=5.0, gt=0)
    amp: bool = Field(default=False, description="bfloat16 autocast on CPU, float16 on CUDA; losses stay float32")


class KappaFitConfig(_Section):
    """After training: fit an evidence head's kappa to each image's evidence (training.kappa_fit)."""

    enabled: bool = False
    epochs: int = Field(default=8, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    batch_size: int = Field(default=512, ge=2)
    scale_init: float = Field(default=10.0, gt=0, description="initial s in the vMF concentration s * kappa")


class CheckpointConfig(_Section):
    """When to write checkpoints."""

    every_steps: int | None = Field(default=None, ge=1, description="also checkpoint inside epochs")
    keep_last: int = Field(default=2, ge=1)


class TrainConfig(_Section):
    """A whole training run."""

    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    kappa_fit: KappaFitConfig = Field(default_factory=KappaFitConfig)

    @model_validator(mode="after")
    def _sizes_agree(self) -> TrainConfig:
        if self.data.kind != "synthetic" and self.data.root is None:
            raise ValueError(f"data.root is required for data.kind={self.data.kind!r}")
        if self.kappa_fit.enabled and not (self.model.freeze_trunk and self.model.head == "vmf_evidence"):
            raise ValueError("kappa_fit needs model.freeze_trunk=true and model.head=vmf_evidence")
        if self.kappa_fit.enabled and self.model.init_checkpoint is None:
            raise ValueError("kappa_fit measures evidence by the init checkpoint's directions; set one")
        return self


def _merge(base: dict[str, Any], diff: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in diff.items():
        old = out.get(key)
        # A section of another kind (a box crop replacing a template crop) replaces rather than merges.
        same_kind = (
            not isinstance(old, dict) or old.get("kind") == value.get("kind", old.get("kind"))
            if isinstance(value, dict)
            else False
        )
        if isinstance(value, dict) and isinstance(old, dict) and key != "params" and same_kind:
            out[key] = _merge(old, value)
        else:
            out[key] = value
    return out


def _read_layers(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"config inheritance loops through {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"no config file at {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping, got {type(raw).__name__}")
    parent = raw.pop("base", None)
    if parent is None:
        return raw
    return _merge(_read_layers(path.parent / str(parent), (*seen, path)), raw)


def apply_override(data: dict[str, Any], assignment: str) -> dict[str, Any]:
    """Apply one ``a.b.c=value`` override (value parsed as YAML)."""
    key, sep, value = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {assignment!r} must look like key.path=value")
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {assignment!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = yaml.safe_load(value)
    return data


def load_config(path: Path, overrides: list[str] | None = None) -> TrainConfig:
    """Resolve a config file with its bases and overrides into a validated TrainConfig."""
    data = _read_layers(Path(path))
    for assignment in overrides or []:
        data = apply_override(data, assignment)
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid training config {path}: {problems}") from exc


def dump_config(config: TrainConfig) -> str:
    """The resolved config as YAML."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
