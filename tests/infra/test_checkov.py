"""checkov on the synthesized template, run from its own virtual environment (it pins its own boto3).

Every finding the stack does not fix is in cdk_app/checkov_skips.py with its reason, written into the template
as checkov's own suppression; anything else fails here, and so does an entry that no longer matches a finding.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cdk_app.checkov_skips import CHECKOV_SKIPS
from tests.infra.synth import REPO_ROOT, synth_template

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"


def run_checkov(template_path: Path) -> dict[str, Any]:
    if not CHECKOV.exists():
        message = f"checkov's own virtual environment is missing ({CHECKOV}); `make setup` creates it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        [str(CHECKOV), "-f", str(template_path), "--framework", "cloudformation", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        # Offline: no download of Bridgecrew's check-id mappings (the BC_* ids, which this list does not use).
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert result.stdout.strip(), result.stderr[-2000:]
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def template_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("cdk.out")
    synth_template(outdir)
    return outdir / "KycLiveness.template.json"


def test_checkov_finds_nothing_but_the_listed_skips(template_path: Path) -> None:
    report = run_checkov(template_path)
    summary = report["summary"]
    assert summary["parsing_errors"] == 0 and summary["passed"] > 50
    failed = [(check["check_id"], check["resource"]) for check in report["results"]["failed_checks"]]
    assert failed == []
    skipped = sorted(
        (check["check_id"], check["check_result"]["suppress_comment"]) for check in report["results"]["skipped_checks"]
    )
    assert skipped == sorted((skip.check, skip.reason) for skip in CHECKOV_SKIPS)


def test_without_the_skips_checkov_fails_exactly_those(template_path: Path, tmp_path: Path) -> None:
    """The control: the suppressions are what hides those findings, so the test above can fail."""
    template = json.loads(template_path.read_text())
    bare = copy.deepcopy(template)
    for resource in bare["Resources"].values():
        resource.get("Metadata", {}).pop("checkov", None)
    path = tmp_path / "bare.template.json"
    path.write_text(json.dumps(bare))
    report = run_checkov(path)
    assert report["summary"]["failed"] == len(CHECKOV_SKIPS) and report["summary"]["skipped"] == 0
