"""`dprime verify|enroll|identify` against live servers: the tiny models, and the bundled model on real photos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dprime.cli import main
from tests.data import require
from tests.images import astronaut_jpeg, no_face_png
from tests.live_server import LiveServer


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, Path]:
    out = {"eileen": tmp_path / "eileen.jpg", "blank": tmp_path / "blank.png"}
    out["eileen"].write_bytes(astronaut_jpeg())
    out["blank"].write_bytes(no_face_png())
    return out


def test_enroll_identify_and_verify_print_what_the_server_decided(
    tiny_server: LiveServer,
    photos: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DPRIME_URL", tiny_server.url)
    monkeypatch.setenv("DPRIME_API_KEY", tiny_server.admin_key)
    assert main(["enroll", "Eileen CLI", str(photos["eileen"]), str(photos["blank"])]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("enrolled Eileen CLI as ") and out[0].endswith(": 1 photo(s) accepted")
    assert out[2].startswith("  rejected blank.png: no_face: ")
    identity_id = out[0].split(" as ")[1].split(":")[0]

    assert main(["identify", str(photos["eileen"]), "-k", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"match: Eileen CLI ({identity_id})")
    assert out[1].startswith("  1. Eileen CLI  cosine 1.0000  match")

    assert main(["verify", str(photos["eileen"]), "--identity", identity_id, "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["decision"] == "match" and body["identity"]["id"] == identity_id


def test_url_and_key_flags_win_and_errors_exit_2(
    tiny_server: LiveServer,
    photos: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DPRIME_API_KEY", raising=False)
    monkeypatch.setenv("DPRIME_URL", "http://127.0.0.1:9")  # nothing listens there: the flag must be used
    flags = ["--url", tiny_server.url, "--key", tiny_server.admin_key]
    assert main(["verify", str(photos["eileen"]), str(photos["eileen"]), *flags]) == 0
    assert capsys.readouterr().out.startswith("match  cosine 1.0000")
    assert main(["verify", str(photos["blank"]), str(photos["eileen"]), *flags]) == 2
    assert "no_face: " in caplog.text
    assert main(["verify", str(photos["eileen"]), str(photos["eileen"]), "--url", tiny_server.url]) == 2
    assert "no API key: pass --key or set DPRIME_API_KEY" in caplog.text
    assert main(["verify", str(photos["eileen"]), *flags]) == 2
    assert "give a second photo or --identity ID" in caplog.text


@pytest.mark.data
def test_verify_with_the_bundled_model_on_real_photos(
    bundled_server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    lfw = require("lfw_dev")
    flags = ["--url", bundled_server.url, "--key", bundled_server.admin_key]
    same = [str(lfw / "Hugh_Grant/Hugh_Grant_0001.jpg"), str(lfw / "Hugh_Grant/Hugh_Grant_0004.jpg")]
    assert main(["verify", *same, *flags]) == 0
    assert capsys.readouterr().out.split()[0] == "match"
    other = [str(lfw / "Hugh_Grant/Hugh_Grant_0003.jpg"), str(lfw / "Naomi_Watts/Naomi_Watts_0005.jpg")]
    assert main(["verify", *other, *flags]) == 0
    assert capsys.readouterr().out.split()[0] == "non_match"
