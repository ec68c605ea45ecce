"""Decode uploaded bytes into an RGB uint8 array, with size limits checked before any pixel is decoded."""

from __future__ import annotations

import io
import warnings

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from facepipe.errors import BadImageError, ImageTooLargeError

RgbImage = npt.NDArray[np.uint8]

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP")


def decode_image(data: bytes, max_bytes: int, max_pixels: int) -> RgbImage:
    """Decode JPEG/PNG/WebP bytes to an (H, W, 3) RGB array.

    EXIF orientation is applied; greyscale, palette, CMYK and 16-bit images are converted to RGB and an
    alpha channel is composited onto white. The byte limit is checked first and the pixel limit is read
    from the header, so a decompression bomb is refused before it is decoded.

    Raises:
        ImageTooLargeError: more than max_bytes bytes or max_pixels pixels.
        BadImageError: empty, unreadable, truncated, or of an unsupported format.
    """
    if len(data) == 0:
        raise BadImageError("the image is empty (0 bytes); expected JPEG, PNG or WebP bytes")
    if len(data) > max_bytes:
        raise ImageTooLargeError(
            f"the image is {len(data)} bytes; the limit is {max_bytes} bytes",
            {"bytes": len(data), "max_bytes": max_bytes},
        )
    try:
        with warnings.catch_warnings():
            # PIL's own bomb warning is superseded by the explicit pixel limit below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                img = Image.open(io.BytesIO(data))
            except Image.DecompressionBombError as exc:
                # PIL refuses headers far beyond its own limit before we can read the size ourselves.
                raise ImageTooLargeError(
                    f"the image header declares too many pixels ({exc}); the limit is {max_pixels} pixels",
                    {"max_pixels": max_pixels},
                ) from exc
            fmt = img.format
            if fmt not in SUPPORTED_FORMATS:
                raise BadImageError(
                    f"unsupported image format {fmt!r}; expected one of {', '.join(SUPPORTED_FORMATS)}",
                    {"format": fmt},
                )
            width, height = img.size
            if width * height > max_pixels:
                raise ImageTooLargeError(
                    f"the image is {width}x{height} = {width * height} pixels; the limit is {max_pixels} pixels",
                    {"width": width, "height": height, "max_pixels": max_pixels},
                )
            img.load()
            rgb = _to_rgb(ImageOps.exif_transpose(img))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadImageError(f"the bytes could not be decoded as an image: {exc}; expected JPEG, PNG or WebP") from exc
    arr = np.asarray(rgb, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
        raise BadImageError(f"decoded image has shape {arr.shape}; expected (H, W, 3)")
    return np.ascontiguousarray(arr)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits rather than clipping.
        arr = np.asarray(img, dtype=np.float64)
        peak = max(float(arr.max()), 1.0)
        return Image.fromarray((arr / peak * 255.0).round().astype(np.uint8)).convert("RGB")
    return img.convert("RGB")


def encode_png(image: RgbImage) -> bytes:
    """Lossless PNG bytes of an RGB array (for stored face crops)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def encode_jpeg(image: RgbImage, quality: int) -> bytes:
    """JPEG bytes of an RGB array (for stored face crops)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
