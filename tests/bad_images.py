"""Hypothesis strategies of image bytes a client might send: every mode and format the decoder meets, animated
files, odd EXIF, and the same bytes truncated, corrupted or with huge declared dimensions."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from hypothesis import strategies as st
from PIL import Image

# (mode, formats that can store it)
_MODES = {
    "RGB": ("JPEG", "PNG", "WEBP"),
    "L": ("JPEG", "PNG"),
    "CMYK": ("JPEG",),
    "RGBA": ("PNG", "WEBP"),
    "LA": ("PNG",),
    "P": ("PNG",),
    "I;16": ("PNG",),
    "1": ("PNG",),
}


@st.composite
def images(draw: st.DrawFn) -> bytes:
    """A small valid image: any mode, format, a few frames, optionally EXIF with any orientation or a huge blob."""
    mode = draw(st.sampled_from(sorted(_MODES)))
    fmt = draw(st.sampled_from(_MODES[mode]))
    h, w = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    seed = draw(st.integers(0, 2**32 - 1))
    rgb = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    frame = Image.fromarray(rgb)
    if mode == "I;16":
        frame = Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257).convert("I;16")
    elif mode == "P":
        frame = frame.quantize(colors=draw(st.integers(2, 256)))
    else:
        frame = frame.convert(mode)
    kwargs: dict[str, object] = {}
    if draw(st.booleans()) and fmt in ("JPEG", "PNG", "WEBP"):
        exif = Image.Exif()
        exif[0x0112] = draw(st.integers(0, 65535))  # orientation: 1..8 are defined, anything else is absurd
        if draw(st.booleans()):
            exif[0x010E] = "x" * draw(st.integers(0, 60_000))  # ImageDescription: a huge EXIF segment
        kwargs["exif"] = exif.tobytes()
    frames = draw(st.integers(1, 3)) if fmt in ("PNG", "WEBP") and mode in ("RGB", "RGBA") else 1
    buf = io.BytesIO()
    if frames > 1:
        others = [frame.rotate(90 * i) for i in range(1, frames)]
        frame.save(buf, format=fmt, save_all=True, append_images=others, **kwargs)
    else:
        frame.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with a tiny body: a decompression bomb's shape."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header (SOF0) is rewritten to claim width x height."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 30, 200)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@st.composite
def broken(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """``base`` bytes cut short, overwritten, spliced, or emptied."""
    data = bytearray(draw(base))
    how = draw(st.sampled_from(["truncate", "overwrite", "insert", "empty", "header_only"]))
    if how == "empty":
        return b""
    if how == "header_only":
        return bytes(data[: draw(st.integers(1, min(len(data), 64)))])
    if how == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    n = draw(st.integers(1, 16))
    for _ in range(n):
        at = draw(st.integers(0, len(data) - 1))
        junk = draw(st.binary(min_size=1, max_size=8))
        if how == "overwrite":
            data[at : at + len(junk)] = junk
        else:
            data[at:at] = junk
    return bytes(data)


huge_dimensions = st.one_of(
    st.builds(png_declaring, st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1)),
    st.builds(jpeg_declaring, st.integers(1, 65535), st.integers(1, 65535)),
)

any_upload = st.one_of(images(), broken(images()), huge_dimensions, st.binary(max_size=256))
