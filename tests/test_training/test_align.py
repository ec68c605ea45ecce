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
