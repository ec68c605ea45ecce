"""Decoding limits and conversions, directly on facepipe."""

import numpy as np
import pytest
from PIL import Image

from facepipe.decode import decode_image, encode_jpeg, encode_png
from facepipe.errors import BadImageError, ImageTooLargeError
from tests.images import encode


def test_png_round_trip_is_exact_and_jpeg_close() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    assert np.array_equal(decode_image(encode_png(img), 10**6, 10**6), img)
    smooth = np.repeat(np.repeat(img[::10, ::10], 10, 0), 10, 1)
    assert np.abs(decode_image(encode_jpeg(smooth, 95), 10**6, 10**6).astype(int) - smooth).mean() < 6


def test_alpha_is_composited_on_white_and_16_bit_is_scaled() -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)  # fully transparent black
    out = decode_image(encode(rgba, "PNG"), 10**6, 10**6)
    assert np.all(out == 255)
    deep = Image.fromarray(np.full((4, 4), 40000, dtype=np.uint16))
    import io

    buf = io.BytesIO()
    deep.save(buf, format="PNG")
    out = decode_image(buf.getvalue(), 10**6, 10**6)
    assert out.shape == (4, 4, 3) and np.all(out == 255)


def test_limits_and_truncation() -> None:
    data = encode(np.zeros((100, 100, 3), np.uint8), "PNG")
    with pytest.raises(ImageTooLargeError, match=f"the image is {len(data)} bytes; the limit is 100 bytes"):
        decode_image(data, 100, 10**6)
    with pytest.raises(ImageTooLargeError, match="100x100 = 10000 pixels; the limit is 9999 pixels"):
        decode_image(data, 10**6, 9999)
    with pytest.raises(BadImageError, match="could not be decoded"):
        decode_image(encode(np.zeros((100, 100, 3), np.uint8), "JPEG")[:200], 10**6, 10**6)
