"""`dprime models import MODEL.onnx`: a manifest for a third-party ONNX face recognizer, so it gets
calibrated decisions too. Its kappa is marked untrained unless the user says the model was trained for it."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import onnx

from facecore.constants import MODEL_FILENAME
from facecore.errors import DprimeError
from facecore.fileio import sha256_file
from facecore.manifest import ModelManifest, OnnxSpec, PreprocessSpec, Provenance, UncertaintyRecord, save_manifest
from training.checkpoint import package_versions

logger = logging.getLogger(__name__)


class ImportModelError(DprimeError):
    """The ONNX file cannot be served as a face embedder."""


def _static_dims(value_info: onnx.ValueInfoProto) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]


def import_model(
    onnx_path: Path,
    out: Path,
    preprocess: PreprocessSpec,
    model_id: str | None = None,
    kappa_trained: bool = False,
    notes: str | None = None,
) -> ModelManifest:
    """Copy the ONNX into out/ and write its manifest (uncalibrated)."""
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model)
    inputs = [i for i in model.graph.input if i.name not in {init.name for init in model.graph.initializer}]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise ImportModelError(
            f"{onnx_path} has {len(inputs)} inputs and {len(model.graph.output)} outputs; "
            "a face embedder needs exactly one of each"
        )
    in_dims, out_dims = _static_dims(inputs[0]), _static_dims(model.graph.output[0])
    expected = [3, *preprocess.input_size]
    if len(in_dims) != 4 or any(d is not None and d != e for d, e in zip(in_dims[1:], expected, strict=True)):
        raise ImportModelError(f"{onnx_path} takes {in_dims}; the preprocessing given implies [N, {expected}]")
    if len(out_dims) != 2 or out_dims[1] is None:
        raise ImportModelError(f"{onnx_path} outputs {out_dims}; expected [N, D] with a fixed D")
    out = Path(out)
    if (out / MODEL_FILENAME).exists():
        raise ImportModelError(f"{out} already holds a model")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx_path, out / MODEL_FILENAME)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    manifest = ModelManifest(
        model_id=model_id or out.name,
        model_sha256=sha256_file(out / MODEL_FILENAME),
        backbone="imported",
        loss="unknown",
        embedding_dim=int(out_dims[1]),
        onnx=OnnxSpec(
            input_name=inputs[0].name,
            output_name=model.graph.output[0].name,
            opset=opset,
            dynamic_batch=in_dims[0] is None,
        ),
        preprocess=preprocess,
        uncertainty=UncertaintyRecord(kappa_trained=kappa_trained),
        provenance=Provenance(
            source="import", packages=package_versions(), notes=notes or f"imported from {Path(onnx_path).name}"
        ),
    )
    save_manifest(manifest, out)
    logger.info(
        "imported %s as %s (d=%d); calibrate it with `dprime calibrate %s --pairs ...`",
        onnx_path,
        manifest.model_id,
        manifest.embedding_dim,
        out,
    )
    return manifest
