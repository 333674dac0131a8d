"""The API's routes and CORS rules, read from the runtime's ``lambda_src/liveness/routes.py``.

That file is the one declaration the handler, the local server and this CDK app share. It is pure data,
so it is loaded by path instead of putting the whole Lambda package on the CDK app's import path.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_ROUTES_FILE = Path(__file__).resolve().parent.parent / "lambda_src" / "liveness" / "routes.py"
_MODULE_NAME = "_liveness_api_surface"


def _load():
    if _MODULE_NAME in sys.modules:
        return sys.modules[_MODULE_NAME]
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, _ROUTES_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE_NAME] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


surface = _load()
ROUTES = surface.ROUTES
STAGE: str = surface.STAGE
CORS_ALLOW_METHODS: tuple[str, ...] = surface.CORS_ALLOW_METHODS
CORS_ALLOW_HEADERS: tuple[str, ...] = surface.CORS_ALLOW_HEADERS
CORS_EXPOSE_HEADERS: tuple[str, ...] = surface.CORS_EXPOSE_HEADERS
CORS_MAX_AGE_SECONDS: int = surface.CORS_MAX_AGE_SECONDS
