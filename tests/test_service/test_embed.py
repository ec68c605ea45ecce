"""POST /v1/embed through the real detector, alignment and ONNX model, with every input error."""

import io
import struct
import zlib

import numpy as np
import onnxruntime as ort
from fastapi.testclient import TestClient
from PIL import Image

from facecore.alignment import template_warp_matrix
from facepipe.crops import warp
from service.config import Settings
from tests.images import astronaut, astronaut_jpeg, encode, no_face_png, two_faces_jpeg


def post_embed(client: TestClient, data: bytes, name: str = "face.jpg", **form: str):  # type: ignore[no-untyped-def]
    return client.post("/v1/embed", files={"image": (name, data)}, data=form)


def test_embed_returns_raw_embedding_kappa_and_geometry(client: TestClient, settings: Settings) -> None:
    r = post_embed(client, astronaut_jpeg())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_id"] == "tiny-a" and len(body["faces"]) == 1
    face = body["faces"][0]
    e = np.array(face["embedding"])
    assert e.shape == (8,)
    assert face["kappa"] == np.linalg.norm(e).item() or abs(face["kappa"] - np.linalg.norm(e)) < 1e-4
    x1, y1, x2, y2 = face["box"]
    assert 150 < x1 < 200 and 40 < y1 < 80 and 250 < x2 < 300 and 150 < y2 < 200
    left_eye, right_eye = face["landmarks"][0], face["landmarks"][1]
    assert left_eye[0] < right_eye[0] and face["det_score"] > 0.9
    assert 0 <= face["quality_pct"] <= 100 and 0 <= face["mean_resultant"] < 1
    # Independent path: decode with PIL, warp by the landmarks the service reported, run onnxruntime directly.
    image = np.asarray(Image.open(io.BytesIO(astronaut_jpeg())).convert("RGB"))
    crop = warp(image, template_warp_matrix(np.array(face["landmarks"]), "arcface_112", 32), (32, 32))
    x = ((crop.astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None]
    session = ort.InferenceSession(str(settings.models_dir / "tiny-a" / "model.onnx"))
    expected = session.run(None, {"images": x})[0][0]
    assert np.allclose(e, expected, rtol=1e-3, atol=1e-2)


def test_aligned_flag_skips_detection(client: TestClient) -> None:
    crop = np.asarray(Image.fromarray(astronaut()[60:180, 170:280]).resize((32, 32)))
    r = post_embed(client, encode(crop, "PNG"), "crop.png", aligned="true")
    assert r.status_code == 200, r.text
    face = r.json()["faces"][0]
    assert face["box"] is None and face["landmarks"] is None and face["det_score"] is None
    big = post_embed(client, encode(np.asarray(Image.fromarray(crop).resize((112, 112))), "PNG"), aligned="true")
    assert big.status_code == 200  # resized to the model input


def test_same_face_in_every_pixel_format(client: TestClient) -> None:
    ref = np.array(post_embed(client, encode(astronaut(), "PNG"), "a.png").json()["faces"][0]["embedding"])
    img = Image.fromarray(astronaut())
    variants = {
        "webp": encode(astronaut(), "WEBP", lossless=True),
        "rgba": _save(img.convert("RGBA"), "PNG"),
        "cmyk": _save(img.convert("CMYK"), "JPEG", quality=100),
    }
    for name, data in variants.items():
        r = post_embed(client, data, name)
        assert r.status_code == 200, (name, r.text)
        e = np.array(r.json()["faces"][0]["embedding"])
        cos = e @ ref / np.linalg.norm(e) / np.linalg.norm(ref)
        assert cos > 0.98, (name, cos)
    grey = post_embed(client, _save(img.convert("L"), "PNG"), "grey.png")
    assert grey.status_code == 200 and len(grey.json()["faces"]) == 1


def test_exif_orientation_is_applied(client: TestClient) -> None:
    ref = np.array(post_embed(client, encode(astronaut(), "PNG")).json()["faces"][0]["box"])
    rotated = Image.fromarray(np.ascontiguousarray(np.rot90(astronaut(), k=1)))  # stored sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    r = post_embed(client, _save(rotated, "JPEG", quality=95, exif=exif.tobytes()))
    assert r.status_code == 200, r.text
    assert np.allclose(r.json()["faces"][0]["box"], ref, atol=6)


def test_several_faces_policies(client: TestClient) -> None:
    assert len(post_embed(client, two_faces_jpeg()).json()["faces"]) == 1  # settings default: largest
    assert len(post_embed(client, two_faces_jpeg(), multiple_faces="all").json()["faces"]) == 2
    r = post_embed(client, two_faces_jpeg(), multiple_faces="error")
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "multiple_faces" and err["details"]["faces"] == 2
    assert "found 2 faces where exactly one was expected" in err["message"]


def test_input_errors_have_stable_codes_and_say_what_was_wrong(client: TestClient, settings: Settings) -> None:
    r = post_embed(client, no_face_png(), "blank.png")
    assert (r.status_code, r.json()["error"]["code"]) == (422, "no_face")
    assert r.json()["error"]["message"] == "no face found in the 256x256 image"
    r = post_embed(client, b"not an image at all")
    assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_image")
    assert "expected JPEG, PNG or WebP" in r.json()["error"]["message"]
    r = post_embed(client, b"")
    assert r.json()["error"]["message"] == "the image is empty (0 bytes); expected JPEG, PNG or WebP bytes"
    r = post_embed(client, _save(Image.fromarray(astronaut()), "GIF"), "a.gif")
    assert r.status_code == 400 and "unsupported image format 'GIF'" in r.json()["error"]["message"]
    r = client.post("/v1/embed", data={"aligned": "false"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    assert "image" in r.json()["error"]["message"]
    r = client.post("/v1/embed", files={"image": ("a.jpg", astronaut_jpeg())}, headers={"X-API-Key": "wrong"})
    assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthorized")
    assert "Traceback" not in r.text


def test_size_limits_refuse_before_decoding(make_settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from service.main import create_app

    settings = make_settings(max_image_bytes=200_000, max_image_pixels=1_000_000)
    with TestClient(create_app(settings), headers={"X-API-Key": "test-admin-key"}) as c:
        r = post_embed(c, encode(astronaut(), "PNG"))  # ~500 kB
        assert (r.status_code, r.json()["error"]["code"]) == (413, "image_too_large")
        assert "the limit is 200000 bytes" in r.json()["error"]["message"]
        bomb = _png_header_only(5_000, 5_000)  # 25 megapixels declared in a few bytes
        r = post_embed(c, bomb, "bomb.png")
        assert (r.status_code, r.json()["error"]["code"]) == (413, "image_too_large")
        assert r.json()["error"]["details"] == {"width": 5_000, "height": 5_000, "max_pixels": 1_000_000}
        r = post_embed(c, _png_header_only(50_000, 50_000), "huge.png")  # beyond PIL's own refusal point
        assert (r.status_code, r.json()["error"]["code"]) == (413, "image_too_large")
        r = c.post("/v1/embed", files={"image": ("x", b"\0" * 5_000_000)})
        assert r.status_code == 413  # whole request refused from its Content-Length


def _save(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size, with a tiny (truncated) body: a decompression bomb's shape."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    )
