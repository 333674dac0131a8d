"""The API's surface in one place: its routes, the JSON schema each body must match, its stage and CORS rules.

Read by the CDK app (API Gateway resources, request models and the CORS preflight) and by the local dev
server (``local/``), so a new route is declared once. The handler registers the same routes on its
Powertools resolver; a test checks that the two lists agree. Pure data: no AWS or CDK imports.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    method: str
    resource: str  # API Gateway's resource template: "{name}" is one path segment
    schema: str | None = None  # a draft-04 schema in schemas/ the JSON body must match; None: no body

    @property
    def path_parameters(self) -> tuple[str, ...]:
        return tuple(part[1:-1] for part in self.resource.split("/") if part.startswith("{") and part.endswith("}"))


ROUTES: tuple[Route, ...] = (
    Route("POST", "/detect", "detect_request"),
    Route("POST", "/sessions", "session_create"),
    Route("POST", "/sessions/{id}/frames", "session_frame"),
    Route("POST", "/sessions/{id}/light", "light_start"),
    Route("POST", "/sessions/{id}/light/frames", "light_frames"),
    Route("GET", "/sessions/{id}"),
)

STAGE = "v1"

# A method a resource does not define: 405 with Allow (a mock in AWS), like any HTTP server, not API Gateway's
# default 403 MISSING_AUTHENTICATION_TOKEN, which stays the answer for a path the API does not define.
METHOD_NOT_ALLOWED_CODE = "METHOD_NOT_ALLOWED"
METHOD_NOT_ALLOWED_MESSAGE = "Method Not Allowed: the Allow header lists the methods this resource accepts."


def allowed_methods(routes: Iterable[Route] = ROUTES) -> dict[str, tuple[str, ...]]:
    """Each resource with routes -> the ``Allow`` header of its 405: its methods, then OPTIONS (the CORS preflight).
    The API's other resources (parents such as "/") define no method: 403, as for an unknown path."""
    methods: dict[str, set[str]] = {}
    for route in routes:
        methods.setdefault(route.resource, set()).add(route.method)
    return {resource: (*sorted(names), "OPTIONS") for resource, names in methods.items()}


# The CORS preflight (an API Gateway mock integration in AWS). Credentials are never allowed: browsers
# reject "Access-Control-Allow-Credentials: true" beside a wildcard, and the API uses bearer tokens anyway.
CORS_ALLOW_METHODS: tuple[str, ...] = ("GET", "POST", "OPTIONS")
CORS_ALLOW_HEADERS: tuple[str, ...] = ("Content-Type", "Authorization", "X-Amz-Date", "X-Amz-Security-Token")
CORS_EXPOSE_HEADERS: tuple[str, ...] = ("Retry-After",)
CORS_MAX_AGE_SECONDS = 600
