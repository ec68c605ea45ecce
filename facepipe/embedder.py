"""The ONNX embedding model run by onnxruntime, checked against its manifest when loaded."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from facecore.constants import MODEL_FILENAME
from facecore.manifest import ModelManifest
from facepipe.errors import ModelLoadError, ProviderUnavailableError

logger = logging.getLogger(__name__)

PROVIDERS = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}


def provider_names(names: list[str]) -> list[str]:
    """onnxruntime provider names for short names ('cuda', 'cpu'), in order of preference."""
    unknown = [n for n in names if n not in PROVIDERS]
    if unknown:
        raise ProviderUnavailableError(f"unknown execution provider(s) {unknown}; known: {sorted(PROVIDERS)}")
    return [PROVIDERS[n] for n in names]


class OnnxEmbedder:
    """Raw embeddings e (N, D) from a model directory's model.onnx, as its manifest describes."""

    def __init__(
        self,
        model_dir: Path,
        manifest: ModelManifest,
        providers: list[str] | None = None,
        require_cuda: bool = False,
        intra_op_threads: int = 0,
    ) -> None:
        self.manifest = manifest
        wanted = provider_names(providers or ["cpu"])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra_op_threads
        path = Path(model_dir) / MODEL_FILENAME
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=wanted)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelLoadError(f"onnxruntime could not load {path}: {exc}") from exc
        self.providers_in_use: list[str] = list(self.session.get_providers())
        if require_cuda and PROVIDERS["cuda"] not in self.providers_in_use:
            raise ProviderUnavailableError(
                f"CUDA was required but onnxruntime is using {self.providers_in_use} "
                f"(available here: {ort.get_available_providers()}); refusing to run silently on the CPU"
            )
        self._check_signature()

    def _check_signature(self) -> None:
        spec = self.manifest.onnx
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        if spec.input_name not in inputs:
            raise ModelLoadError(f"model has inputs {sorted(inputs)}; the manifest names {spec.input_name!r}")
        if spec.output_name not in outputs:
            raise ModelLoadError(f"model has outputs {sorted(outputs)}; the manifest names {spec.output_name!r}")
        shape = inputs[spec.input_name].shape
        expected = [3, *self.manifest.preprocess.input_size]
        static = [d if isinstance(d, int) else None for d in shape[1:]]
        if len(shape) != 4 or any(s is not None and s != e for s, e in zip(static, expected, strict=True)):
            implied = ", ".join(map(str, expected))
            raise ModelLoadError(f"model input shape is {shape}; the manifest implies [N, {implied}]")
        dim = outputs[spec.output_name].shape[-1]
        if isinstance(dim, int) and dim != self.manifest.embedding_dim:
            raise ModelLoadError(f"model outputs {dim}-d embeddings; the manifest says {self.manifest.embedding_dim}")

    def embed(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Raw embeddings for a preprocessed batch (N, 3, H, W)."""
        spec = self.manifest.onnx
        (out,) = self.session.run([spec.output_name], {spec.input_name: batch})
        result = np.asarray(out, dtype=np.float32)
        if result.shape != (batch.shape[0], self.manifest.embedding_dim):
            raise ModelLoadError(
                f"model returned shape {result.shape}; expected {(batch.shape[0], self.manifest.embedding_dim)}"
            )
        return result
