"""The detectors on real faces: RetinaFace (packaged) and YuNet (by path), and the crops built from them."""

from pathlib import Path

import numpy as np
import pytest

from facecore.alignment import template_points
from facecore.manifest import BoxMarginCrop, PreprocessSpec, TemplateCrop
from facepipe.crops import CHIP_SIZE, crop_face, make_chip
from facepipe.decode import decode_image
from facepipe.detection import Detection, nms
from facepipe.detectors import DetectorSpec, create_detector, spec_from_string
from facepipe.errors import ModelLoadError
from tests.data import require, yunet_model
from tests.images import astronaut, two_faces_jpeg

# Hand-read from the photo: the eye centres and nose tip of the astronaut (x, y).
ASTRONAUT_LEFT_EYE, ASTRONAUT_RIGHT_EYE, ASTRONAUT_NOSE = (203, 102), (247, 103), (223, 127)


def check_astronaut(det: Detection) -> None:
    assert det.score > 0.85
    assert np.linalg.norm(det.landmarks[0] - ASTRONAUT_LEFT_EYE) < 8
    assert np.linalg.norm(det.landmarks[1] - ASTRONAUT_RIGHT_EYE) < 8
    assert np.linalg.norm(det.landmarks[2] - ASTRONAUT_NOSE) < 10
    x1, y1, x2, y2 = det.box
    assert x1 < ASTRONAUT_LEFT_EYE[0] < x2 and y1 < ASTRONAUT_NOSE[1] < y2


def test_retinaface_finds_the_astronaut() -> None:
    dets = create_detector(DetectorSpec()).detect(astronaut())
    assert len(dets) == 1
    check_astronaut(dets[0])


def test_retinaface_finds_both_faces_and_scales_back_to_source_pixels() -> None:
    image = decode_image(two_faces_jpeg(), 10**8, 10**8)
    dets = create_detector(DetectorSpec(max_side=320)).detect(image)  # forces a downscale
    assert len(dets) == 2
    assert sorted(d.box[0] for d in dets)[1] > 512  # the second face is on the right half


def test_yunet_by_path_agrees_with_retinaface() -> None:
    yunet = create_detector(spec_from_string(f"yunet:{yunet_model()}"))
    (det,) = yunet.detect(astronaut())
    check_astronaut(det)
    assert spec_from_string(str(yunet_model())).kind == "yunet"


def test_detector_spec_errors() -> None:
    with pytest.raises(ModelLoadError, match="cannot tell which detector"):
        spec_from_string("/models/mystery.onnx")
    with pytest.raises(ModelLoadError, match="no YuNet model at"):
        create_detector(DetectorSpec(kind="yunet", path=Path("/nonexistent.onnx")))
    with pytest.raises(ModelLoadError, match="unknown detector kind 'scrfd'"):
        create_detector(DetectorSpec(kind="scrfd"))


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=float)
    assert nms(boxes, np.array([0.8, 0.9, 0.7]), 0.4).tolist() == [1, 2]


def test_template_crop_puts_landmarks_on_the_template_and_chip_round_trips() -> None:
    image = astronaut()
    (det,) = create_detector(DetectorSpec()).detect(image)
    spec = PreprocessSpec(input_size=(112, 112), color_order="RGB", mean=(0, 0, 0), std=(1, 1, 1), crop=TemplateCrop())
    crop = crop_face(image, det, spec)
    assert crop.shape == (112, 112, 3)
    chip = make_chip(image, det)
    assert chip.image.shape == (CHIP_SIZE, CHIP_SIZE, 3)
    # The chip's landmarks sit on the template shifted into the chip's centre: centroids coincide exactly
    # (a property of the least-squares similarity), the points themselves up to the fit's residual.
    target = template_points("arcface_112") + 56
    assert np.allclose(chip.detection.landmarks.mean(axis=0), target.mean(axis=0), atol=1e-6)
    assert np.abs(chip.detection.landmarks - target).mean() < 5
    # Re-cropping from the chip gives (nearly) the crop cut from the original photo.
    again = crop_face(chip.image, chip.detection, spec, source_scale=chip.scale)
    assert np.mean(np.abs(again.astype(float) - crop.astype(float))) < 6
    box_spec = spec.model_copy(update={"input_size": (160, 160), "crop": BoxMarginCrop(margin_px=32)})
    direct = crop_face(image, det, box_spec).astype(float)
    via_chip = crop_face(chip.image, chip.detection, box_spec, source_scale=chip.scale).astype(float)
    assert np.mean(np.abs(direct - via_chip)) < 20  # the chip's box is the rotated box's upright hull


@pytest.mark.data
def test_retinaface_on_real_lfw_and_cfp_photos() -> None:
    detector = create_detector(DetectorSpec())
    lfw = sorted(require("lfw_dev").glob("*/*.jpg"))[:40]
    cfp = sorted(require("cfp_dev").glob("*/frontal_01.jpg"))[:20]
    found = 0
    for path in lfw + cfp:
        dets = detector.detect(decode_image(path.read_bytes(), 10**8, 10**8))
        if dets:
            found += 1
            best = max(dets, key=lambda d: d.area)
            assert best.landmarks[0, 0] < best.landmarks[1, 0]  # image-left eye first
    assert found >= 0.95 * len(lfw + cfp)
