"""Face crops: the model's own crop (5-point warp or box plus margin) and the canonical chip kept for re-embedding.

Every crop is one affine matrix from facecore.alignment applied by ``cv2.warpAffine``, so training
(``dprime align``), calibration and the service cut faces identically.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from facecore.alignment import box_margin_matrix, template_warp_matrix
from facecore.constants import TEMPLATE_SIZES
from facecore.errors import AlignmentError
from facecore.manifest import BoxMarginCrop, PreprocessSpec, TemplateCrop
from facepipe.decode import RgbImage
from facepipe.detection import Detection

FloatArray = npt.NDArray[np.float64]

# The canonical chip: the ArcFace template at its native scale, centred in a 224 x 224 canvas. It keeps
# twice the template's field of view, enough for any 5-point warp or box-plus-margin crop a later model
# may ask for, so a gallery can be re-embedded without the original photos.
CHIP_SIZE = 224
CHIP_TEMPLATE = "arcface_112"
_CHIP_TEMPLATE_SIZE = TEMPLATE_SIZES[CHIP_TEMPLATE]
_CHIP_OFFSET = (CHIP_SIZE - _CHIP_TEMPLATE_SIZE) / 2.0


@dataclass(frozen=True)
class FaceChip:
    """A stored face: the chip image and the detection re-expressed in chip pixels.

    ``scale`` is chip pixels per source pixel, so a margin given in source pixels can be converted.
    """

    image: RgbImage
    detection: Detection
    scale: float


def warp(image: RgbImage, matrix: FloatArray, out_hw: tuple[int, int]) -> RgbImage:
    """Apply a 2x3 source-to-crop matrix (bilinear, black outside the image)."""
    out = cv2.warpAffine(image, matrix, (out_hw[1], out_hw[0]), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    return np.ascontiguousarray(out, dtype=np.uint8)


def crop_matrix(
    detection: Detection, spec: PreprocessSpec, image_hw: tuple[int, int], source_scale: float = 1.0
) -> FloatArray:
    """Matrix cutting the crop a manifest's preprocessing asks for.

    Args:
        detection: the face, in the coordinates of the image being cropped.
        spec: the model's preprocessing.
        image_hw: (height, width) of the image being cropped.
        source_scale: pixels of this image per pixel of the original photo (1 unless cropping a chip); a
            box margin is stated in original-photo pixels.
    """
    out_h, out_w = spec.input_size
    crop = spec.crop
    if isinstance(crop, TemplateCrop):
        if out_h != out_w:
            raise AlignmentError(f"a template crop needs a square input, got {out_h}x{out_w}")
        return template_warp_matrix(detection.landmarks, crop.template, out_w)
    if isinstance(crop, BoxMarginCrop):
        return box_margin_matrix(
            detection.box, crop.margin_px * source_scale, image_hw, (out_h, out_w), crop.margin_ratio, crop.clip
        )
    raise AlignmentError(f"unknown crop kind {crop!r}")


def crop_face(image: RgbImage, detection: Detection, spec: PreprocessSpec, source_scale: float = 1.0) -> RgbImage:
    """The model-input crop of one detected face."""
    matrix = crop_matrix(detection, spec, image.shape[:2], source_scale)
    return warp(image, matrix, spec.input_size)


def make_chip(image: RgbImage, detection: Detection) -> FaceChip:
    """Cut the canonical chip of a face and carry its box and landmarks into chip coordinates."""
    matrix = template_warp_matrix(detection.landmarks, CHIP_TEMPLATE, _CHIP_TEMPLATE_SIZE)
    matrix[:, 2] += _CHIP_OFFSET
    chip = warp(image, matrix, (CHIP_SIZE, CHIP_SIZE))
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    center = np.array([(detection.box[0] + detection.box[2]) / 2, (detection.box[1] + detection.box[3]) / 2])
    c = matrix[:, :2] @ center + matrix[:, 2]
    half = scale * np.array([detection.box[2] - detection.box[0], detection.box[3] - detection.box[1]]) / 2
    box = np.array([c[0] - half[0], c[1] - half[1], c[0] + half[0], c[1] + half[1]])
    landmarks = detection.landmarks @ matrix[:, :2].T + matrix[:, 2]
    return FaceChip(image=chip, detection=Detection(box=box, score=detection.score, landmarks=landmarks), scale=scale)


def resize_aligned(image: RgbImage, spec: PreprocessSpec) -> RgbImage:
    """A client's pre-aligned crop, resized to the model input when its size differs."""
    out_h, out_w = spec.input_size
    if image.shape[:2] == (out_h, out_w):
        return image
    return np.ascontiguousarray(cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_AREA), dtype=np.uint8)
