"""Umeyama similarity transform and the box-plus-margin crop matrix."""

import numpy as np
import pytest

from facecore.alignment import (
    box_margin_matrix,
    estimate_similarity_transform,
    template_points,
    template_warp_matrix,
)
from facecore.errors import AlignmentError


def test_recovers_a_known_similarity_transform() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ (scale * rot).T + shift
    m = estimate_similarity_transform(src, dst)
    assert np.allclose(m[:, :2], scale * rot, atol=1e-10) and np.allclose(m[:, 2], shift, atol=1e-8)


def test_never_returns_a_reflection() -> None:
    src = np.array([[0, 0], [3, 0], [0, 1], [1, 2], [2, 5]], dtype=float)
    mirrored = src * [-1, 1]
    m = estimate_similarity_transform(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0


def test_template_warp_maps_landmarks_onto_template() -> None:
    tpl = template_points("arcface_112")
    landmarks = tpl * 2.5 + [30.0, 40.0]
    m = template_warp_matrix(landmarks, "arcface_112", 112)
    mapped = landmarks @ m[:, :2].T + m[:, 2]
    assert np.allclose(mapped, tpl, atol=1e-9)
    assert np.allclose(template_points("arcface_112", 224), tpl * 2)


def test_box_margin_matrix_equals_crop_then_resize() -> None:
    m = box_margin_matrix([50, 60, 150, 180], 32, (400, 300), (160, 160))
    # The grown box [34, 44, 166, 196] maps its outer pixel edges onto the crop's edges.
    corners = np.array([[34 - 0.5, 44 - 0.5, 1], [166 - 0.5, 196 - 0.5, 1]]) @ m.T
    assert np.allclose(corners, [[-0.5, -0.5], [159.5, 159.5]])
    clipped = box_margin_matrix([0, 0, 100, 100], 64, (100, 100), (10, 10))
    assert np.allclose(clipped[:, :2], np.diag([0.1, 0.1]))


def test_relative_unclipped_margin_keeps_the_face_scale() -> None:
    # A tight photo: the box fills it. Clipping would stretch the box over the whole crop; unclipped, the box
    # (100 x 120, grown 30 % of its size) keeps its place and proportions, with the border outside the photo.
    m = box_margin_matrix([0, 0, 100, 120], 0, (120, 100), (156, 130), margin_ratio=0.3, clip=False)
    corners = np.array([[-15 - 0.5, -18 - 0.5, 1], [115 - 0.5, 138 - 0.5, 1]]) @ m.T
    assert np.allclose(corners, [[-0.5, -0.5], [129.5, 155.5]])
    assert np.allclose(m[:, :2], np.eye(2))
    # Pixel and relative margins add up: 20 px + 20 % of 100 px = 40 px across, 20 per side.
    both = box_margin_matrix([100, 100, 200, 200], 20, (400, 400), (140, 140), margin_ratio=0.2)
    assert np.allclose(both, [[1, 0, -80], [0, 1, -80]])


def test_errors_name_the_problem() -> None:
    with pytest.raises(AlignmentError, match=r"need 5 landmarks of shape \(5, 2\), got \(4, 2\)"):
        template_warp_matrix(np.zeros((4, 2)), "arcface_112", 112)
    with pytest.raises(AlignmentError, match="all at one point"):
        estimate_similarity_transform(np.ones((5, 2)), np.zeros((5, 2)))
    with pytest.raises(AlignmentError, match="unknown alignment template 'nope'"):
        template_points("nope")
    with pytest.raises(AlignmentError, match="leaves no area"):
        box_margin_matrix([500, 500, 600, 600], 0, (100, 100), (10, 10))
