"""The Dockerfiles and compose file, checked statically (no docker engine runs here)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (it comes with the dev extra)")
    return path


def compose_binary() -> str:
    # The package's console script drops the exit status, so call the static binary it wraps.
    import compose

    return str(Path(compose.__file__).parent / "docker-compose")


def compose(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DPRIME_", "MODEL_ID"))} | env
    return subprocess.run(
        [compose_binary(), "-f", str(REPO / "docker/compose.yaml"), *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=REPO,
        timeout=60,
    )


def test_compose_file_is_valid_and_requires_the_admin_key() -> None:
    ok = compose("--profile", "train", "--profile", "redeploy", "config", DPRIME_ADMIN_KEY="k", MODEL_ID="m1")
    assert ok.returncode == 0, ok.stderr
    resolved = yaml.safe_load(ok.stdout)
    assert set(resolved["services"]) == {"serve", "train", "redeploy"}
    missing = compose("config")
    assert missing.returncode != 0 and "set DPRIME_ADMIN_KEY" in missing.stderr


def test_serve_service_shape() -> None:
    spec = yaml.safe_load((REPO / "docker/compose.yaml").read_text())
    serve = spec["services"]["serve"]
    assert serve["build"]["dockerfile"] == "docker/serve.Dockerfile"
    assert serve["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert "/ready" in " ".join(serve["healthcheck"]["test"])
    assert "../models:/app/models" in serve["volumes"]
    assert serve["environment"]["DPRIME_PROVIDERS"].startswith("${DPRIME_PROVIDERS:-cuda")
    assert spec["services"]["train"]["profiles"] == ["train"]
    assert "/v1/admin/models/" in spec["services"]["redeploy"]["command"]


def test_dockerfiles_lint_clean_and_serve_image_has_no_torch() -> None:
    files = [str(REPO / "docker/serve.Dockerfile"), str(REPO / "docker/train.Dockerfile")]
    lint = subprocess.run(
        [tool("hadolint"), "--config", str(REPO / ".hadolint.yaml"), *files], capture_output=True, text=True, timeout=60
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    serve = (REPO / "docker/serve.Dockerfile").read_text()
    instructions = "\n".join(line for line in serve.splitlines() if not line.startswith("#"))
    assert "'.[gpu]'" in instructions and "torch" not in instructions and "COPY training" not in instructions
    assert '"service.main:app"' in serve and "HEALTHCHECK" in serve
    train = (REPO / "docker/train.Dockerfile").read_text()
    assert "torch==2.13.0" in train and "torchrun" in train
