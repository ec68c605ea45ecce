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


def test_compose_file_is_valid_and_requires_the_admin_key_and_the_database_password() -> None:
    secrets = {"DPRIME_ADMIN_KEY": "k", "DPRIME_DB_PASSWORD": "pw"}
    ok = compose("--profile", "train", "--profile", "redeploy", "config", MODEL_ID="m1", **secrets)
    assert ok.returncode == 0, ok.stderr
    resolved = yaml.safe_load(ok.stdout)
    assert set(resolved["services"]) == {"postgres", "serve", "proxy", "train", "redeploy"}
    # One variable missing at a time: with several, compose names whichever it meets first, in no fixed order.
    missing = compose("config", DPRIME_DB_PASSWORD="pw", MODEL_ID="m1")
    assert missing.returncode != 0 and "set DPRIME_ADMIN_KEY" in missing.stderr
    missing = compose("config", DPRIME_ADMIN_KEY="k", MODEL_ID="m1")
    assert missing.returncode != 0 and "set DPRIME_DB_PASSWORD" in missing.stderr


def test_replicas_over_postgresql_behind_the_proxy() -> None:
    resolved = yaml.safe_load(
        compose("config", DPRIME_ADMIN_KEY="k", DPRIME_DB_PASSWORD="pw", DPRIME_REPLICAS="3", MODEL_ID="m").stdout
    )
    services = resolved["services"]
    postgres, serve, proxy = services["postgres"], services["serve"], services["proxy"]
    assert postgres["image"].startswith("pgvector/pgvector:") and "pg16" in postgres["image"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(v["target"] == "/var/lib/postgresql/data" and v["type"] == "volume" for v in postgres["volumes"])
    assert postgres["environment"]["POSTGRES_PASSWORD"] == "pw"
    # The replicas: several, no host port, the database wired in and waited for.
    assert serve["deploy"]["replicas"] == 3 and "ports" not in serve
    assert serve["environment"]["DPRIME_GALLERY_URL"] == "postgresql://dprime:pw@postgres:5432/dprime"
    assert serve["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "--proxy-headers" in serve["command"] and serve["command"][1:3] == ["--factory", "service.main:serve_app"]
    assert serve["stop_grace_period"]
    # The proxy publishes the port and forwards to every replica by the service's name.
    assert proxy["ports"][0]["published"] == "8000" and proxy["depends_on"]["serve"]["condition"] == "service_healthy"
    conf_mount = next(v for v in proxy["volumes"] if v["target"].startswith("/etc/nginx/"))
    conf = Path(conf_mount["source"]).read_text()
    assert "server serve:8000" in conf and "proxy_pass http://dprime_replicas" in conf
    assert "client_max_body_size" in conf


def test_serve_service_shape() -> None:
    spec = yaml.safe_load((REPO / "docker/compose.yaml").read_text())
    serve = spec["services"]["serve"]
    assert serve["build"]["dockerfile"] == "docker/serve.Dockerfile"
    assert "http://proxy:8000/v1/admin/models/" in spec["services"]["redeploy"]["command"]
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
    assert '"--factory", "service.main:serve_app"' in serve and "HEALTHCHECK" in serve
    train = (REPO / "docker/train.Dockerfile").read_text()
    assert "torch==2.13.0" in train and "torchrun" in train
