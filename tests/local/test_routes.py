"""The route table (lambda_src/liveness/routes.py) is the one list the handler, the stack and the local front
share; these checks keep them from drifting apart."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from liveness import routes
from liveness.routes import ROUTES, Route
from liveness.schemas import SCHEMA_DIR

from local.events import RouteTable
from tests.local.support import registered_routes, template

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_every_route_is_served_by_the_handler_and_nothing_else_is() -> None:
    assert {(route.method, template(route.resource)) for route in ROUTES} == registered_routes()


def test_every_schema_a_route_names_exists() -> None:
    for route in ROUTES:
        if route.schema is not None:
            assert (SCHEMA_DIR / f"{route.schema}.json").is_file(), route


def test_the_stack_uses_the_same_cors_and_stage() -> None:
    """Until cdk_app/api.py imports these from liveness.routes, its literals must equal them."""
    literals = _module_literals(REPO_ROOT / "cdk_app" / "api.py")
    if "ALLOWED_HEADERS" in literals:
        assert tuple(literals["ALLOWED_HEADERS"]) == routes.CORS_ALLOW_HEADERS
    if "STAGE" in literals:
        assert literals["STAGE"] == routes.STAGE


def _module_literals(path: Path) -> dict[str, object]:
    values: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return values


TABLE = RouteTable(
    [
        Route("POST", "/sessions"),
        Route("GET", "/sessions/{id}"),
        Route("POST", "/sessions/{id}/frames"),
        Route("GET", "/sessions/latest"),
    ]
)


@pytest.mark.parametrize(
    ("method", "path", "resource", "parameters", "served"),
    [
        ("GET", "/sessions/abc", "/sessions/{id}", {"id": "abc"}, True),
        ("POST", "/sessions/abc/frames", "/sessions/{id}/frames", {"id": "abc"}, True),
        ("GET", "/sessions/latest", "/sessions/latest", {}, True),  # a literal segment beats a variable
        ("GET", "/sessions", "/sessions", {}, False),  # the resource exists, not with GET
        ("OPTIONS", "/", "/", {}, False),
    ],
)
def test_paths_match_resources_like_api_gateway(
    method: str, path: str, resource: str, parameters: dict[str, str], served: bool
) -> None:
    match = TABLE.match(method, path)
    assert match is not None and match.resource == resource and match.path_parameters == parameters
    assert (match.route is not None) is served


@pytest.mark.parametrize("path", ["/nope", "/sessions//frames", "/sessions/abc/frames/x", "/sessions/", "sessions"])
def test_other_paths_match_nothing(path: str) -> None:
    assert TABLE.match("GET", path) is None
