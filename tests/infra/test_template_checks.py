"""Whole-template checks: a normalized snapshot (syrupy) and cfn-lint."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from tests.infra.synth import synth_template

_ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")
# A published version's logical id ends with a hash of the function's configuration, its code included
# (SnapStart publishes one): it changes with every source edit like the asset hashes.
_VERSION_HASH = re.compile(r"(CurrentVersion[0-9A-F]{8})[0-9a-f]{32}\b")


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    return outdir, synth_template(outdir)


def normalized(template: dict[str, Any]) -> dict[str, Any]:
    """Asset hashes change with every source edit; the rest of the template should not change silently."""
    text = _ASSET_HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True))
    return json.loads(_VERSION_HASH.sub(r"\1<code-hash>", text))


def test_template_matches_snapshot(synthesized: tuple[Path, dict[str, Any]], snapshot) -> None:
    _, template = synthesized
    assert normalized(template) == snapshot(extension_class=JSONSnapshotExtension)


def test_snapshot_normalization_hides_only_asset_hashes(synthesized: tuple[Path, dict[str, Any]]) -> None:
    _, template = synthesized
    text = json.dumps(normalized(template))
    assert "<asset-hash>.zip" in text
    assert "LivenessFunctionCurrentVersionD799EA79<code-hash>" in text  # the alias's version, hash hidden
    assert "python3.14" in text and "rekognition:DetectFaces" in text


def test_cfn_lint_finds_no_errors(synthesized: tuple[Path, dict[str, Any]]) -> None:
    outdir, _ = synthesized
    template_path = outdir / "KycLiveness.template.json"
    result = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "parseable", str(template_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    # cfn-lint's exit code is a bit mask: 2 = errors, 4 = warnings, 8 = informational.
    assert result.returncode & 2 == 0, result.stdout + result.stderr
    assert result.returncode & 4 == 0, result.stdout + result.stderr
