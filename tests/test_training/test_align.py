"""`dprime align` on real face photos: crops, a report of rejected images, and resuming."""

import json
from pathlib import Path

import numpy as np

from dprime.cli import main
from facepipe.decode import decode_image
from tests.images import astronaut_jpeg, astronaut_variant_jpeg, no_face_png, two_faces_jpeg


def test_align_writes_crops_reports_rejects_and_resumes(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    files = {
        "eileen/a.jpg": astronaut_jpeg(),
        "eileen/b.jpg": astronaut_variant_jpeg(),
        "crowd/two.jpg": two_faces_jpeg(),
        "blank/none.png": no_face_png(),
        "blank/broken.jpg": b"nope",
    }
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    assert main(["align", str(src), str(dst), "--multiple-faces", "reject", "--workers", "1"]) == 0
    crops = sorted(p.relative_to(dst).as_posix() for p in dst.glob("*/*.png"))
    assert crops == ["eileen/a.png", "eileen/b.png"]
    crop = decode_image((dst / "eileen/a.png").read_bytes(), 10**6, 10**6)
    assert crop.shape == (112, 112, 3) and crop.mean() > 40
    report = json.loads((dst / "align_report.json").read_text())
    assert report["counts"] == {"skipped": 0, "aligned": 2, "several_faces": 1, "no_face": 1, "unreadable": 1}
    assert {(r["path"], r["reason"]) for r in report["rejected"]} == {
        ("crowd/two.jpg", "several_faces"),
        ("blank/none.png", "no_face"),
        ("blank/broken.jpg", "unreadable"),
    }
    # Resume: existing crops are skipped; keeping the largest face now accepts the crowd photo.
    assert main(["align", str(src), str(dst), "--multiple-faces", "largest", "--workers", "1"]) == 0
    report = json.loads((dst / "align_report.json").read_text())
    assert report["counts"]["skipped"] == 2 and report["counts"]["aligned"] == 1
    assert report["several_faces_kept_largest"] == ["crowd/two.jpg"]
    assert {r["path"] for r in report["rejected"]} == {"blank/none.png", "blank/broken.jpg"}
    assert not list(dst.rglob("*.tmp.png"))
    box = decode_image((dst / "crowd/two.png").read_bytes(), 10**6, 10**6)
    assert np.abs(box.astype(int) - crop.astype(int)).mean() < 25  # the larger face is the same astronaut


def test_align_refuses_to_mix_crops_and_pads_unclipped_margins(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "eileen").mkdir(parents=True)
    (src / "eileen" / "a.jpg").write_bytes(astronaut_jpeg())
    assert main(["align", str(src), str(dst), "--workers", "1"]) == 0
    before = (dst / "eileen" / "a.png").read_bytes()
    relative = ["--crop", "box_margin", "--margin", "0", "--margin-ratio", "3", "--no-clip", "--size", "160"]
    # A resumed run would skip the existing template crop and mix two preprocessings: refused, nothing touched.
    assert main(["align", str(src), str(dst), *relative, "--workers", "1"]) == 2
    assert (dst / "eileen" / "a.png").read_bytes() == before
    other = tmp_path / "box"
    assert main(["align", str(src), str(other), *relative, "--workers", "1"]) == 0
    crop = decode_image((other / "eileen" / "a.png").read_bytes(), 10**6, 10**6)
    spec = json.loads((other / "align_spec.json").read_text())
    assert spec["preprocess"]["crop"] == {"kind": "box_margin", "margin_px": 0.0, "margin_ratio": 3.0, "clip": False}
    # The box grown fourfold reaches past the photo's top edge: padded black there, never stretched.
    assert crop.shape == (160, 160, 3) and crop[:4].max() == 0 and crop[70:90, 70:90].mean() > 40
