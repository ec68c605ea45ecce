"""FaceNet's published graph loaded into our torch Inception-ResNet-v1 matches FaceNet itself (cv2.dnn)."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.images import astronaut, astronaut_variant_jpeg
from training.backbones import create_backbone
from training.checkpoint import load_checkpoint

facenet_import = pytest.importorskip("training.facenet_import")


@pytest.fixture(scope="module")
def graph() -> Path:
    try:
        return facenet_import.packaged_graph_path()
    except facenet_import.FacenetImportError as exc:
        pytest.skip(str(exc))


def test_torch_model_matches_facenet_through_cv2_dnn(graph: Path, tmp_path: Path) -> None:
    ckpt = facenet_import.write_facenet_checkpoint(tmp_path / "facenet.pt", graph)
    model = create_backbone("inception_resnet_v1", 512, head="vmf").eval()
    missing, _ = model.load_state_dict(load_checkpoint(ckpt)["model"], strict=False)
    assert all(k.startswith("head.kappa") for k in missing)
    img = astronaut()
    variant = cv2.imdecode(np.frombuffer(astronaut_variant_jpeg(), np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    crops = [cv2.resize(img[40:200, 160:300], (160, 160)), cv2.resize(variant[20:190, 220:360], (160, 160))]
    x = ((np.stack(crops).astype(np.float32) - 127.5) / 128.0).transpose(0, 3, 1, 2).copy()
    ref = facenet_import.reference_embedding(graph, x)
    with torch.no_grad():
        direction = model.head.direction(model.trunk(torch.from_numpy(x))).numpy()
    mu = direction / np.linalg.norm(direction, axis=1, keepdims=True)
    assert np.all(np.sum(mu * ref, axis=1) > 0.9999999)
    assert np.all((np.linalg.norm(direction, axis=1) > 15) & (np.linalg.norm(direction, axis=1) < 35))
