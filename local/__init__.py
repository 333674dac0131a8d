"""Local mode: the real Lambda handler behind a small HTTP front that behaves like the deployed API Gateway.

``python -m local`` (``make run``) serves it; see docs/local-mode.md.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
