"""Bad input at scale for the decoder: whatever bytes arrive, decode_image returns an (H, W, 3) uint8 image or
raises one of its two errors (bad_image, image_too_large); nothing else escapes and nothing decodes a bomb."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from facepipe.decode import decode_image
from facepipe.errors import BadImageError, ImageTooLargeError
from tests.bad_images import any_upload, broken, huge_dimensions, images, jpeg_declaring, png_declaring

MAX_BYTES = 1 << 20
MAX_PIXELS = 1 << 20
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LONG = settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decodes_or_refuses(data: bytes) -> None:
    try:
        arr = decode_image(data, MAX_BYTES, MAX_PIXELS)
    except (BadImageError, ImageTooLargeError) as exc:
        assert exc.code in ("bad_image", "image_too_large") and exc.message
        return
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3 and min(arr.shape[:2]) >= 1
    assert arr.shape[0] * arr.shape[1] <= MAX_PIXELS


@FAST
@given(images())
def test_every_valid_mode_format_frame_count_and_exif_decodes(data: bytes) -> None:
    arr = decode_image(data, MAX_BYTES, MAX_PIXELS)
    assert arr.dtype == np.uint8 and arr.shape[2] == 3


@FAST
@given(broken(images()))
def test_truncated_and_corrupted_files_decode_or_are_refused_as_bad_image(data: bytes) -> None:
    decodes_or_refuses(data)


@FAST
@given(huge_dimensions)
def test_huge_declared_dimensions_are_refused_or_decoded_within_the_limit(data: bytes) -> None:
    decodes_or_refuses(data)


@pytest.mark.parametrize("bomb", [png_declaring(50_000, 50_000), jpeg_declaring(65_000, 65_000)])
def test_decompression_bombs_are_refused_before_decoding(bomb: bytes) -> None:
    with pytest.raises(ImageTooLargeError, match="pixels"):
        decode_image(bomb, MAX_BYTES, MAX_PIXELS)


def test_empty_bytes_are_a_bad_image() -> None:
    with pytest.raises(BadImageError, match="empty"):
        decode_image(b"", MAX_BYTES, MAX_PIXELS)


@pytest.mark.slow
@LONG
@given(any_upload)
def test_long_fuzz_of_every_kind_of_upload(data: bytes) -> None:
    decodes_or_refuses(data)
