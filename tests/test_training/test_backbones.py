"""Every registered backbone: output shape, raw (unnormalised) embeddings, head scale, FastPReLU and export."""

import io
import math

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from training.backbones import create_backbone, default_input_size, list_backbones
from training.backbones.layers import FastPReLU


@pytest.mark.parametrize("name", list_backbones())
def test_backbone_outputs_raw_embeddings(name: str) -> None:
    torch.manual_seed(0)
    size = default_input_size(name)
    model = create_backbone(name, embedding_dim=64).eval()
    with torch.no_grad():
        e = model(torch.randn(2, 3, size, size))
    assert e.shape == (2, 64) and torch.isfinite(e).all()
    assert not torch.allclose(e.norm(dim=1), torch.ones(2))  # nothing normalises the output
    scaled = create_backbone(name, embedding_dim=64, head_scale=10.0).eval()
    scaled.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("head.")}, strict=False)
    with torch.no_grad():
        scaled.head.linear.weight.copy_(model.head.linear.weight * 10)
        assert torch.allclose(
            scaled(torch.zeros(1, 3, size, size)).norm(), 10 * model(torch.zeros(1, 3, size, size)).norm(), rtol=1e-4
        )


@pytest.mark.parametrize("name", ["tiny", "mobilefacenet", "iresnet18"])
def test_backbone_exports_to_onnx_with_parity(name: str) -> None:
    size = default_input_size(name)
    model = create_backbone(name, embedding_dim=32).eval()
    x = torch.randn(3, 3, size, size)
    buf = io.BytesIO()
    torch.onnx.export(
        model,
        (x,),
        buf,
        input_names=["images"],
        output_names=["embedding"],
        dynamic_axes={"images": {0: "N"}, "embedding": {0: "N"}},
        opset_version=17,
        dynamo=False,
    )
    sess = ort.InferenceSession(buf.getvalue())
    out = sess.run(None, {"images": x.numpy()})[0]
    with torch.no_grad():
        ref = model(x).numpy()
    assert np.max(np.linalg.norm(out - ref, axis=1) / np.linalg.norm(ref, axis=1)) < 1e-4


def test_fast_prelu_equals_prelu() -> None:
    ref = torch.nn.PReLU(8)
    with torch.no_grad():
        ref.weight.uniform_(-0.5, 0.5)
    fast = FastPReLU(8)
    with torch.no_grad():
        fast.weight.copy_(ref.weight)
    x = torch.randn(4, 8, 5, 5)
    assert torch.allclose(fast(x), ref(x), atol=1e-7)


def test_unknown_backbone_lists_names() -> None:
    listed = "inception_resnet_v1, inception_resnet_v1_taps, iresnet100"
    with pytest.raises(ValueError, match=f"unknown backbone 'resnet9'; registered: {listed}"):
        create_backbone("resnet9")


def test_vmf_head_separates_direction_and_kappa() -> None:
    from training.backbones.layers import VmfHead

    head = VmfHead(16, 8, kappa_init=12.0)
    x = torch.randn(5, 16)
    e = head(x)
    assert torch.allclose(e.norm(dim=1), torch.full((5,), 12.0), atol=1e-4)  # every face starts at kappa_init
    d = head.direction(x)
    assert torch.allclose(e / e.norm(dim=1, keepdim=True), d / d.norm(dim=1, keepdim=True), atol=1e-6)
    with pytest.raises(ValueError, match="must exceed kappa_floor"):
        VmfHead(4, 4, kappa_init=0.5)


def test_mirror_vmf_head_ranks_kappa_by_agreement_of_the_views() -> None:
    from training.backbones.layers import MirrorVmfHead, resultant_and_gap

    head = MirrorVmfHead(16, 8, kappa_init=12.0, agreement_init=5.0)
    x = torch.randn(4, 16)
    # Views that agree more (the mirror drifts less from the face) get a larger kappa, whatever the face.
    drift = torch.randn(4, 16)
    views = torch.stack([x, x + torch.tensor([0.01, 0.1, 0.3, 1.0])[:, None] * drift], dim=1)
    e = head(views)
    kappa = e.norm(dim=1)
    assert torch.all(kappa[:-1] > kappa[1:])
    units = nn.functional.normalize(head.direction(views), dim=-1)
    mean = units.mean(dim=1)
    assert torch.allclose(e / kappa[:, None], mean / mean.norm(dim=1, keepdim=True), atol=1e-6)
    # kappa_init where the views' agreement -log(1 - R) equals agreement_init
    gap = math.exp(-5.0)
    with torch.no_grad():
        kappa_at_init = float(head.kappa(torch.tensor([[1 - gap]]), torch.tensor([[gap]])))
    assert math.isclose(kappa_at_init, 12.0, rel_tol=1e-5)
    # The gap 1 - R comes from the views' spread, exact where 1 - R in float32 would lose its digits.
    a = nn.functional.normalize(torch.randn(1, 8, dtype=torch.float64), dim=1)
    b = nn.functional.normalize(a + 1e-3 * torch.randn(1, 8, dtype=torch.float64), dim=1)
    _, r64, _ = resultant_and_gap(torch.stack([a, b], dim=1))
    _, _, gap32 = resultant_and_gap(torch.stack([a, b], dim=1).float())
    assert math.isclose(float(gap32), float(1 - r64), rel_tol=1e-4)
    with pytest.raises(ValueError, match="must exceed kappa_floor"):
        MirrorVmfHead(4, 4, kappa_init=0.5)


def test_a_mirror_head_network_embeds_a_face_and_its_mirror_alike() -> None:
    model = create_backbone("tiny", 16, head="vmf_mirror").eval()
    x = torch.randn(3, 3, 112, 112)
    with torch.no_grad():
        assert torch.allclose(model(x), model(x.flip(3)), atol=1e-5)
        # Equal to the head on the trunk's features of both views.
        views = torch.stack([model.trunk(x), model.trunk(x.flip(3))], dim=1)
        assert torch.allclose(model(x), model.head(views), atol=1e-5)
