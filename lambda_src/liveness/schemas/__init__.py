"""JSON schemas shared by the Lambda (request validation) and the CDK app (API Gateway models).

They are draft-04, the dialect API Gateway request validation supports, so one file serves both.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).parent


@cache
def load_schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))
