"""The OpenAPI document describes exactly what the service does: schemathesis (`--checks all`) against a live
server finds no undeclared status, content type or header, no 5xx, no refused valid input and no accepted
invalid input.

Two runs, because the tool cannot read a multipart body as the service does: on the wire every part is text or
bytes, so a field "mutated to an integer" (or a one-element array) arrives as a valid value. Every operation
without a body runs with all checks; the multipart operations with all checks but negative_data_rejection (and
verify's one-of rule, see schemathesis.toml). Their refusals of bad forms are covered by test_bad_input.py.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.service_process import ADMIN_KEY, REPO, LiveServer, start_server

logger = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
FORM_OPERATIONS = (
    "embed_v1_embed_post",
    "verify_v1_verify_post",
    "search_v1_search_post",
    "enroll_v1_identities_post",
    "add_faces_v1_identities__identity_id__faces_post",
)


def run_schemathesis(server: LiveServer, tmp: Path, examples: int, seconds: int, *args: str) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{server.base}/openapi.json",
        "--checks",
        "all",
        "-H",
        f"X-API-Key: {ADMIN_KEY}",
        "--max-examples",
        str(examples),
        "--max-time",
        str(seconds),
        "--seed",
        "20261202",
        "--no-color",
        *args,
    ]
    env = {"SCHEMATHESIS_HOOKS": "tests.test_service.schemathesis_hooks", "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=tmp, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    failures = done.stdout.find("FAILURES")
    assert done.returncode == 0, done.stdout[failures : failures + 12000] + done.stdout[-3000:] + done.stderr[-3000:]
    assert "Tested:" in done.stdout  # it really ran operations
    # The run's summary (operations, test cases, failures) for the record: pytest -o log_cli=true shows it.
    summary = done.stdout.rfind("SUMMARY")
    which = "the multipart operations" if "--include-operation-id" in args else "every other operation"
    logger.info("schemathesis, %s:\n%s", which, done.stdout[summary:] if summary >= 0 else done.stdout[-1500:])


def contract(models_dir: Path, tmp_path: Path, examples: int, seconds: int) -> None:
    # Wrong keys are part of the fuzzing; the per-client limit would otherwise turn them into 429s mid-run.
    server = start_server(models_dir, tmp_path / "var", tmp_path / "server.log", DPRIME_AUTH_MAX_FAILURES="1000000")
    try:
        excluded = [a for op in FORM_OPERATIONS for a in ("--exclude-operation-id", op)]
        run_schemathesis(server, tmp_path, examples, seconds, *excluded)
        included = [a for op in FORM_OPERATIONS for a in ("--include-operation-id", op)]
        run_schemathesis(server, tmp_path, examples, seconds, *included, "--exclude-checks", "negative_data_rejection")
    finally:
        server.stop()


def test_schemathesis_finds_nothing_the_schema_does_not_say(models_dir: Path, tmp_path: Path) -> None:
    contract(models_dir, tmp_path, examples=5, seconds=15)


@pytest.mark.slow
def test_schemathesis_long_run(models_dir: Path, tmp_path: Path) -> None:
    contract(models_dir, tmp_path, examples=100, seconds=150)
