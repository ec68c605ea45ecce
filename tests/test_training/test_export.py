"""`dprime export`: the artefact, its acceptance checks, and the refusals."""

import io
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from dprime.cli import main
from facecore.fileio import sha256_file
from facecore.manifest import load_manifest
from tests.factories import tiny_onnx_model
from training.checkpoint_model import load_trained_model
from training.export import ExportError, check_acceptance, check_parity, export_onnx


def test_export_writes_a_checked_model_and_manifest(smoke_model: Path, smoke_checkpoint: Path) -> None:
    manifest = load_manifest(smoke_model)  # verifies the sha256 too
    assert manifest.model_sha256 == sha256_file(smoke_model / "model.onnx")
    assert (manifest.backbone, manifest.loss, manifest.embedding_dim) == ("tiny", "pd_vmf", 32)
    assert manifest.preprocess.input_size == (64, 64) and manifest.uncertainty.kappa_trained
    assert manifest.calibration is None and manifest.provenance.training_config is not None
    assert manifest.provenance.data_fingerprint and "onnx parity max relative error" in manifest.provenance.notes
    sess = ort.InferenceSession(str(smoke_model / "model.onnx"))
    assert [i.shape for i in sess.get_inputs()] == [["batch", 3, 64, 64]]
    model, _, _ = load_trained_model(smoke_checkpoint)
    x = np.random.default_rng(0).normal(size=(5, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = sess.run(None, {"images": x})[0]
    assert np.max(np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)) < 1e-4
    assert not np.allclose(np.linalg.norm(got, axis=1), 1.0)  # raw embedding, not normalised


def test_export_refuses_to_overwrite(smoke_model: Path, smoke_checkpoint: Path) -> None:
    assert main(["export", str(smoke_checkpoint), "--out", str(smoke_model)]) == 2


def test_parity_refusal_when_graph_and_weights_disagree(smoke_checkpoint: Path, tmp_path: Path) -> None:
    model, config, _ = load_trained_model(smoke_checkpoint)
    export_onnx(model, (64, 64), tmp_path / "m.onnx")
    with torch.no_grad():
        model.head.linear.weight.mul_(1.001)  # the torch model drifts from the exported graph
    batch = np.random.default_rng(1).normal(size=(4, 3, 64, 64)).astype(np.float32)
    with pytest.raises(ExportError, match=r"max relative error .* > 0.0001; refusing to export"):
        check_parity(model, tmp_path / "m.onnx", batch, 1e-4)


def test_acceptance_rejects_wrong_names_and_opset(tmp_path: Path) -> None:
    good = tmp_path / "good.onnx"
    good.write_bytes(tiny_onnx_model(dim=8, size=32))
    check_acceptance(good, (32, 32), 8, 17)
    with pytest.raises(ExportError, match="expected 13"):
        check_acceptance(good, (32, 32), 8, 13)
    with pytest.raises(ExportError, match=r"gave output shape \(1, 8\); expected \(1, 16\)"):
        check_acceptance(good, (32, 32), 16, 17)
    m = onnx.load_from_string(tiny_onnx_model())
    m.graph.output[0].name = "features"
    m.graph.node[-1].output[0] = "features"
    buf = io.BytesIO()
    onnx.save(m, buf)
    (tmp_path / "renamed.onnx").write_bytes(buf.getvalue())
    with pytest.raises(ExportError, match="expected \\['images'\\], \\['embedding'\\]"):
        check_acceptance(tmp_path / "renamed.onnx", (32, 32), 8, 17)


def test_flip_tta_export_averages_the_mirror(smoke_checkpoint: Path, tmp_path: Path) -> None:
    from training.export import export_checkpoint

    manifest = export_checkpoint(smoke_checkpoint, tmp_path / "tta", flip_tta=True)
    assert "flip test-time augmentation" in (manifest.provenance.notes or "")
    model, _, _ = load_trained_model(smoke_checkpoint)
    x = np.random.default_rng(2).normal(size=(3, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        ref = 0.5 * (model(torch.from_numpy(x)) + model(torch.from_numpy(x[..., ::-1].copy()))).numpy()
    got = ort.InferenceSession(str(tmp_path / "tta" / "model.onnx")).run(None, {"images": x})[0]
    assert np.allclose(got, ref, rtol=1e-4, atol=1e-4)
    mirrored = ort.InferenceSession(str(tmp_path / "tta" / "model.onnx")).run(None, {"images": x[..., ::-1].copy()})[0]
    assert np.allclose(got, mirrored, rtol=1e-4, atol=1e-4)  # the embedding no longer depends on handedness


def test_mirror_head_trains_on_a_frozen_trunk_and_exports_without_extra_tta(tmp_path: Path) -> None:
    from training.config import load_config
    from training.export import export_checkpoint
    from training.train import run_training

    config = load_config(
        Path("training/configs/smoke.yaml"),
        ["model.head=vmf_mirror", "model.freeze_trunk=true", "model.kappa_init=8", "optim.epochs=2"],
    )
    checkpoint = run_training(config, tmp_path / "run")
    model, _, state = load_trained_model(checkpoint)
    initial = load_trained_model(checkpoint)[0].head.kappa.__class__(8.0, 1.0, 5.0)
    assert not torch.equal(model.head.kappa.bias, initial.bias)  # EL moved kappa's scale
    with pytest.raises(ExportError, match="already embeds each face with its mirror"):
        export_checkpoint(checkpoint, tmp_path / "double", flip_tta=True)
    manifest = export_checkpoint(checkpoint, tmp_path / "mirror")
    assert "kappa follows how well the two agree" in (manifest.provenance.notes or "")
    session = ort.InferenceSession(str(tmp_path / "mirror" / "model.onnx"))
    x = np.random.default_rng(3).normal(size=(3, 3, 64, 64)).astype(np.float32)
    got = session.run(None, {"images": x})[0]
    with torch.no_grad():
        assert np.allclose(got, model(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-4)
    assert np.allclose(got, session.run(None, {"images": x[..., ::-1].copy()})[0], rtol=1e-4, atol=1e-4)
