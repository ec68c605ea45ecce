"""`dprime export CHECKPOINT --out models/<id>`: ONNX plus a manifest, refused unless onnxruntime agrees with torch.

The graph takes ``images`` (N, 3, H, W) float32 with a dynamic batch and returns the raw ``embedding`` (N, D);
normalisation is never baked in, since the norm is kappa. Acceptance: onnx.checker, names, shapes, opset,
batch 1 and 64 both run, and on real aligned faces the worst relative error ||e_ort - e_torch|| / ||e_torch||
stays within the bound.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import torch
from torch import nn

from facecore.constants import MODEL_FILENAME, ONNX_INPUT_NAME, ONNX_OUTPUT_NAME
from facecore.errors import DprimeError
from facecore.fileio import sha256_file
from facecore.manifest import ModelManifest, OnnxSpec, Provenance, UncertaintyRecord, save_manifest
from facepipe.tensors import to_input_tensor
from training.checkpoint import package_versions
from training.checkpoint_model import load_trained_model
from training.config import TrainConfig
from training.data.datasets import IMAGE_SUFFIXES, read_rgb
from training.setup import build_dataset

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 17
PARITY_FACES = 64
# Losses whose training gives the norm a meaning (the EL-vMF term is what trains kappa).
KAPPA_TRAINING_LOSSES = frozenset({"pd_vmf", "vmf_el", "nivmf"})


class ExportError(DprimeError):
    """The exported graph failed a check; nothing was written."""


class FlipAverage(nn.Module):
    """Mean raw embedding of a face and its horizontal mirror."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """0.5 * (f(x) + f(flip(x)))."""
        out: torch.Tensor = 0.5 * (self.model(images) + self.model(torch.flip(images, dims=[3])))
        return out


def export_onnx(model: nn.Module, input_size: tuple[int, int], path: Path, opset: int = DEFAULT_OPSET) -> None:
    """Write the model as ONNX with a dynamic batch axis."""
    model.eval()
    dummy = torch.zeros(2, 3, *input_size)
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=[ONNX_INPUT_NAME],
        output_names=[ONNX_OUTPUT_NAME],
        dynamic_axes={ONNX_INPUT_NAME: {0: "batch"}, ONNX_OUTPUT_NAME: {0: "batch"}},
        opset_version=opset,
        dynamo=False,
    )


def parity_faces(config: TrainConfig, faces_dir: Path | None, limit: int = PARITY_FACES) -> list[npt.NDArray[np.uint8]]:
    """Real aligned faces for the parity check: a given folder, else the training images."""
    h, w = config.data.preprocess.input_size
    crops: list[npt.NDArray[np.uint8]] = []
    if faces_dir is not None:
        files = sorted(p for p in Path(faces_dir).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        crops = [read_rgb(p) for p in files[:limit]]
    else:
        dataset = build_dataset(config)
        step = max(1, len(dataset) // limit)
        crops = [dataset[i][0] for i in range(0, len(dataset), step)][:limit]
    if not crops:
        raise ExportError(f"no face images for the parity check in {faces_dir}")
    import cv2

    return [c if c.shape[:2] == (h, w) else np.asarray(cv2.resize(c, (w, h)), dtype=np.uint8) for c in crops]


def check_parity(model: nn.Module, onnx_path: Path, batch: npt.NDArray[np.float32], max_rel_error: float) -> float:
    """Worst per-face relative error between onnxruntime and torch; raises beyond max_rel_error."""
    with torch.no_grad():
        ref = model(torch.from_numpy(batch)).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run([ONNX_OUTPUT_NAME], {ONNX_INPUT_NAME: batch})[0]
    rel = float(np.max(np.linalg.norm(got - ref, axis=1) / np.maximum(np.linalg.norm(ref, axis=1), 1e-12)))
    if not rel <= max_rel_error:
        raise ExportError(
            f"onnxruntime disagrees with torch: max relative error {rel:.3g} > {max_rel_error:g}; refusing to export"
        )
    return rel


def check_acceptance(onnx_path: Path, input_size: tuple[int, int], dim: int, opset: int) -> None:
    """Names, dynamic batch, opset, embedding size; batch 1 and 64 both run."""
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model)
    opsets = {o.domain: o.version for o in model.opset_import}
    if opsets.get("", opsets.get("ai.onnx")) != opset:
        raise ExportError(f"model opset is {opsets}; expected {opset}")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = ([i.name for i in sess.get_inputs()], [o.name for o in sess.get_outputs()])
    if names != ([ONNX_INPUT_NAME], [ONNX_OUTPUT_NAME]):
        raise ExportError(f"model has inputs/outputs {names}; expected ['{ONNX_INPUT_NAME}'], ['{ONNX_OUTPUT_NAME}']")
    for n in (1, 64):
        out = sess.run(None, {ONNX_INPUT_NAME: np.zeros((n, 3, *input_size), np.float32)})[0]
        if out.shape != (n, dim):
            raise ExportError(f"batch of {n} gave output shape {out.shape}; expected {(n, dim)}")


def data_fingerprint(config: TrainConfig) -> str:
    """Identity names and file sizes of the training data (or the synthetic recipe), hashed."""
    digest = hashlib.sha256()
    data = config.data
    if data.kind == "synthetic" or data.root is None:
        digest.update(data.synthetic.model_dump_json().encode() + str(config.seed).encode())
    else:
        for p in sorted(Path(data.root).rglob("*")):
            if p.is_file():
                digest.update(f"{p.relative_to(data.root)}:{p.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def export_checkpoint(
    checkpoint: Path,
    out: Path,
    model_id: str | None = None,
    faces_dir: Path | None = None,
    opset: int = DEFAULT_OPSET,
    max_rel_error: float = 1e-4,
    force: bool = False,
    notes: Sequence[str] = (),
    flip_tta: bool = False,
) -> ModelManifest:
    """Export, check, and write ``out/model.onnx`` and ``out/manifest.json`` (uncalibrated).

    With ``flip_tta`` the graph embeds each face and its mirror and returns the mean raw embedding, so every
    consumer (the service included) gets the test-time augmentation, and kappa shrinks when the two disagree.
    """
    trained, config, state = load_trained_model(checkpoint)
    if flip_tta and trained.views == 2:
        raise ExportError(f"head {config.model.head!r} already embeds each face with its mirror; drop flip TTA")
    model: nn.Module = FlipAverage(trained) if flip_tta else trained
    out = Path(out)
    if (out / MODEL_FILENAME).exists() and not force:
        raise ExportError(f"{out} already holds a model; choose another --out or pass --force")
    spec = config.data.preprocess
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / MODEL_FILENAME
        export_onnx(model, spec.input_size, onnx_path, opset)
        check_acceptance(onnx_path, spec.input_size, config.model.embedding_dim, opset)
        if flip_tta:
            notes = [*notes, "flip test-time augmentation inside the graph (mean of the face and its mirror)"]
        if trained.views == 2:
            notes = [*notes, "the graph embeds each face and its mirror; kappa follows how well the two agree"]
        if config.model.head == "vmf_evidence":
            notes = [*notes, "kappa also reads how much detail the trunk's earlier stages see in the face"]
        batch = to_input_tensor(parity_faces(config, faces_dir), spec)
        rel = check_parity(model, onnx_path, batch, max_rel_error)
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(onnx_path, out / MODEL_FILENAME)
    manifest = ModelManifest(
        model_id=model_id or out.name,
        model_sha256=sha256_file(out / MODEL_FILENAME),
        backbone=config.model.backbone,
        loss=config.loss.name,
        embedding_dim=config.model.embedding_dim,
        onnx=OnnxSpec(opset=opset),
        preprocess=spec,
        uncertainty=UncertaintyRecord(kappa_trained=config.loss.name in KAPPA_TRAINING_LOSSES),
        provenance=Provenance(
            source="dprime-train",
            training_config=config.model_dump(mode="json"),
            git_commit=str(state.get("git_commit") or "") or None,
            data_fingerprint=data_fingerprint(config),
            packages=package_versions(),
            notes="; ".join([f"onnx parity max relative error {rel:.2e}", *notes]),
        ),
    )
    save_manifest(manifest, out)
    logger.info("exported %s (parity %.2e) to %s", manifest.model_id, rel, out)
    return manifest
