"""Shared test set-up: the pinned Node for jsii, and the optional ../shared material."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT.parent / "shared"

# jsii runs the CDK on Node: use the npm-pinned Node 24, not whatever the machine has.
_NODE_BIN = REPO_ROOT / "node_modules" / ".bin"
if _NODE_BIN.is_dir() and str(_NODE_BIN) not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = f"{_NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"

# Handler tests must never reach AWS, even by accident.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def mesh_analyzer() -> Any:
    """The embedded analyzer, models loaded once for the whole run (runtime, local, fuzz, browser and e2e tests)."""
    from liveness.analyzers.mesh import MeshAnalyzer, model_dir

    try:
        model_dir()
    except RuntimeError as missing:
        pytest.fail(f"{missing} (see layer/requirements-models.txt)")
    analyzer = MeshAnalyzer()
    analyzer.warm_up()
    return analyzer


def mark_folder(items: list[pytest.Item], conftest: str, marker: pytest.MarkDecorator) -> None:
    """Give every test under the folder of ``conftest`` (a conftest.py's __file__) its tier's marker."""
    folder = Path(conftest).parent
    for item in items:
        if item.path.is_relative_to(folder):
            item.add_marker(marker)


def shared_path(*parts: str) -> Path:
    """A path inside ../shared, or a skip with the reason when a fresh clone has no ../shared."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the developers' ../shared material, absent in a fresh clone)")
    return path
