"""The local server holds its own OpenAPI document under Schemathesis: every operation, every check, the stateful
links (create a session, then read it, send frames and start the light step), a fixed seed and a bounded number
of cases. ``make contract`` runs the same with CONTRACT_EXAMPLES (default 500) cases per operation. Every check
includes ``unsupported_method``: a method a path does not define is 405 with Allow, locally as in the stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from liveness.openapi import DEPLOYED, openapi_document
from liveness.routes import ROUTES

from local.server import LocalServer, local_settings

CONFIG = Path(__file__).with_name("schemathesis.toml")
REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
SEED = "20"
EXAMPLES = os.environ.get("CONTRACT_EXAMPLES", "30")
# Generous: the short run takes about 10 s; this only stops a hung run.
TIMEOUT_SECONDS = 3600 if "CONTRACT_EXAMPLES" in os.environ else 300


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    """The local server as ``make run`` wires it (embedded analyzer, files under a temporary folder)."""
    settings = local_settings(data_dir=tmp_path / "data", port=0, env={})
    with LocalServer(settings, port=0, web_dir=None) as running:
        yield running


def run_schemathesis(
    location: str, workdir: Path, *options: str, examples: str = EXAMPLES
) -> subprocess.CompletedProcess[str]:
    """The CLI in ``workdir``: its cache of past failures (.schemathesis/), which later runs would replay first,
    stays out of the repository and out of the next run."""
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        location,
        "--checks",
        "all",
        "--seed",
        SEED,
        "--max-examples",
        examples,
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--no-color",
        *options,
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.contract.hooks", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, env=env, cwd=workdir, check=False
    )


def test_the_local_server_holds_its_contract(
    server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_schemathesis(f"{server.url}/openapi.json", tmp_path)
    summary = result.stdout[result.stdout.rfind("SUMMARY") :]
    if "CONTRACT_EXAMPLES" in os.environ:  # make contract: the run's summary, without the server's logs
        with capsys.disabled():
            print("\n" + summary)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert f"Tested: {len(ROUTES)}" in summary, summary
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in summary, summary
    # The photo (hooks.py) reached the analyzer: answered frames and detections are archived as JPEG files.
    assert list((tmp_path / "data").rglob("*.jpg")), "no generated request carried a readable photo"


def test_the_deployed_document_does_not_describe_the_local_server(server: LocalServer, tmp_path: Path) -> None:
    """The run can fail: the deployed document demands an Authorization header the local server never checks."""
    deployed = tmp_path / "deployed.json"
    deployed.write_text(json.dumps(openapi_document(DEPLOYED, server.deps.settings)), encoding="utf-8")
    result = run_schemathesis(str(deployed), tmp_path, "--url", server.url, examples="5")
    assert result.returncode != 0, result.stdout[-3000:]
    assert "Missing required header accepted" in result.stdout, result.stdout[-3000:]
