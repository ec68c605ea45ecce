"""The dprime command line: registry and key commands, clear errors, and no torch unless training runs."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dprime.cli import main
from facecore.registry import ModelRegistry
from service.keys import KeyStore
from tests.factories import write_model_dir


def test_models_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for mid in ("a", "b"):
        write_model_dir(tmp_path / mid, mid.encode(), mid, calibrated=(mid == "b"))
    assert main(["models", "--models-dir", str(tmp_path), "activate", "a"]) == 0
    assert main(["models", "--models-dir", str(tmp_path), "activate", "b"]) == 0
    assert main(["models", "--models-dir", str(tmp_path), "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("  a ") and "uncalibrated" in out[0]
    assert out[1].startswith("* b ") and " calibrated" in out[1]
    assert main(["models", "--models-dir", str(tmp_path), "rollback"]) == 0
    assert ModelRegistry(tmp_path).active_id() == "a"
    assert main(["models", "--models-dir", str(tmp_path), "show", "b"]) == 0
    assert '"model_id": "b"' in capsys.readouterr().out


def test_domain_errors_exit_2_with_a_message(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert main(["models", "--models-dir", str(tmp_path), "activate", "ghost"]) == 2
    assert "no model 'ghost'" in caplog.text


def test_keys_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "--data-dir", str(tmp_path), "create", "--name", "cam-1", "--role", "read"]) == 0
    key = capsys.readouterr().out.strip()
    store = KeyStore(tmp_path / "keys.sqlite3", touch_interval_s=60.0)
    assert store.role_of(key) == "read"
    key_id = store.list()[0].key_id
    assert main(["keys", "--data-dir", str(tmp_path), "revoke", key_id]) == 0
    assert store.role_of(key) is None
    assert main(["keys", "--data-dir", str(tmp_path), "revoke", key_id]) == 1


def test_non_training_commands_never_import_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from dprime.cli import main; "
        f"main(['models', '--models-dir', {str(tmp_path)!r}, 'list']); "
        f"main(['keys', '--data-dir', {str(tmp_path)!r}, 'list']); "
        "import service.main; service.main.create_app(); "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    env = dict(os.environ, DPRIME_MODELS_DIR=str(tmp_path))
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True).returncode == 0
