"""Local mode: the real Lambda handler behind a small HTTP front that behaves like the deployed API Gateway.

``python -m local`` (``make run``) serves it; see docs/local-mode.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SRC = REPO_ROOT / "lambda_src"

# The handler is deployed as the top-level package ``liveness``; make it importable the same way here.
if str(LAMBDA_SRC) not in sys.path:
    sys.path.insert(0, str(LAMBDA_SRC))
