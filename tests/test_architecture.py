"""Import rules between the packages: service -> facepipe -> facecore <- training, checked on the source.

Every import statement counts, including the lazy ones inside functions, because the serve image has no
torch and a lazy import fails there just the same.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STDLIB = set(sys.stdlib_module_names)

# Third-party and first-party top-level modules each package may import (the stdlib is always allowed).
ALLOWED: dict[str, set[str]] = {
    "facecore": {"facecore", "numpy", "scipy", "pydantic"},
    "facepipe": {"facepipe", "facecore", "numpy", "scipy", "pydantic", "cv2", "onnxruntime", "PIL"},
    "service": {
        "service",
        "facepipe",
        "facecore",
        "numpy",
        "scipy",
        "pydantic",
        "pydantic_settings",
        "fastapi",
        "starlette",
        "uvicorn",
        "onnxruntime",
        "cv2",
        "PIL",
        "faiss",
        "prometheus_client",
        "multipart",
        # The gallery's migrations and its PostgreSQL backend.
        "alembic",
        "sqlalchemy",
        "psycopg",
        "psycopg_pool",
        "pgvector",
    },
}
# training may import anything except the service.
FORBIDDEN: dict[str, set[str]] = {"training": {"service"}}


def imported_modules(source: str) -> set[str]:
    """Top-level names of every module imported anywhere in the source (relative imports excluded)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def violations(package: str, source: str) -> set[str]:
    """Imports in source that package may not make."""
    mods = imported_modules(source) - STDLIB - {"__future__"}
    if package in ALLOWED:
        return mods - ALLOWED[package]
    return mods & FORBIDDEN.get(package, set())


def package_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", ["facecore", "facepipe", "service", "training"])
def test_package_imports_follow_the_dependency_direction(package: str) -> None:
    files = package_files(package)
    assert files, f"{package} has no source files"
    bad = {str(f.relative_to(ROOT)): sorted(v) for f in files if (v := violations(package, f.read_text()))}
    assert not bad, f"forbidden imports: {bad}"


def test_checker_catches_forbidden_edges() -> None:
    assert violations("service", "def f():\n    import torch\n") == {"torch"}
    assert violations("facecore", "from fastapi import FastAPI") == {"fastapi"}
    assert violations("training", "from service.main import app") == {"service"}
    assert violations("facepipe", "import training.export") == {"training"}
    assert violations("service", "import json, numpy\nfrom facecore.vmf import log_vmf_normalizer") == set()


def test_the_services_rule_side_imports_no_web_framework() -> None:
    # Which numbers decide, the gallery's own calibration and the error catalogue must be usable from the command
    # line and tests without FastAPI: routes translate them to HTTP, nothing below the routes knows HTTP.
    code = (
        "import sys; import service.decisions, service.gallery_calibration, service.error_catalogue; "
        "sys.exit(sorted(m for m in ('fastapi', 'starlette') if m in sys.modules) or 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
