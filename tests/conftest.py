"""Shared test set-up: the pinned Node for jsii, and the optional ../shared material."""

from __future__ import annotations

import os
from pathlib import Path

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


def shared_path(*parts: str) -> Path:
    """A path inside ../shared, or a skip with the reason when a fresh clone has no ../shared."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the developers' ../shared material, absent in a fresh clone)")
    return path
