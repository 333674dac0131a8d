"""HTTP <-> Lambda: an HTTP request becomes the API Gateway REST proxy event the function receives in AWS, and
the function's proxy response becomes the HTTP answer.

Pure functions over plain values (no sockets), so the mapping is easy to test and to compare with AWS's.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from liveness.routes import Route

LOCAL_ACCOUNT = "000000000000"
LOCAL_API_ID = "local"
FUNCTION_NAME = "liveness-local"
# API Gateway's integration timeout (29 s); the fake context counts down from it.
INTEGRATION_TIMEOUT_SECONDS = 29


# ---------------------------------------------------------------------------------------------------------
# Routes: which resource template a path falls under, as API Gateway matches it.


@dataclass(frozen=True)
class RouteMatch:
    resource: str  # the template, e.g. "/sessions/{id}/frames"
    path_parameters: dict[str, str]
    route: Route | None  # None: the resource exists but not with this method


def _segments(path: str) -> list[str]:
    # "/detect/" keeps its empty last segment, so it matches no resource (as in AWS, "/detect/" is not "/detect").
    return [] if path == "/" else path[1:].split("/")


def _is_variable(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


class RouteTable:
    """The API's resources: every route's template and each of its parents (API Gateway creates those too,
    and the CORS preflight is attached to all of them)."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = tuple(routes)
        resources = {"/"}
        for route in self.routes:
            parts = route.resource.strip("/").split("/")
            resources.update("/" + "/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
        self.resources = frozenset(resources)

    def match(self, method: str, path: str) -> RouteMatch | None:
        """The resource ``path`` falls under (literal segments win over variables, as in API Gateway)."""
        if not path.startswith("/"):
            return None
        segments = _segments(path)
        candidates = []
        for resource in self.resources:
            template = _segments(resource)
            if len(template) == len(segments) and all(
                (_is_variable(t) and s) or t == s for t, s in zip(template, segments)
            ):
                candidates.append((tuple(not _is_variable(t) for t in template), resource, template))
        if not candidates:
            return None
        _, resource, template = max(candidates)
        parameters = {t[1:-1]: s for t, s in zip(template, segments) if _is_variable(t)}
        route = next((r for r in self.routes if r.resource == resource and r.method == method.upper()), None)
        return RouteMatch(resource=resource, path_parameters=parameters, route=route)


# ---------------------------------------------------------------------------------------------------------
# Request -> event


@dataclass(frozen=True)
class HttpRequest:
    """What the front read off the wire; the body is already size-checked."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    query: list[tuple[str, str]]
    body: bytes
    source_ip: str
    host: str
    scheme: str = "http"
    port: int = 80


def new_request_id() -> str:
    return str(uuid.uuid4())


def _single_and_multi(pairs: list[tuple[str, str]]) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    """API Gateway's two views of repeated keys: the last value, and every value in order. Both null if none."""
    if not pairs:
        return None, None
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        multi.setdefault(key, []).append(value)
    return {key: values[-1] for key, values in multi.items()}, multi


def _body_field(body: bytes) -> tuple[str | None, bool]:
    """Text bodies pass as text; anything that is not UTF-8 is base64 with ``isBase64Encoded`` (like a
    binary media type would be). An empty body is null, as API Gateway sends it."""
    if not body:
        return None, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def proxy_event(
    request: HttpRequest,
    match: RouteMatch,
    *,
    request_id: str,
    caller_sub: str,
    stage: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The REST API Lambda-proxy event, behind a Cognito user-pool authorizer whose ``sub`` is ``caller_sub``."""
    now = now or datetime.now(timezone.utc)
    forwarded = [
        ("X-Forwarded-For", request.source_ip),
        ("X-Forwarded-Port", str(request.port)),
        ("X-Forwarded-Proto", request.scheme),
    ]
    headers, multi_headers = _single_and_multi(request.headers + forwarded)
    query, multi_query = _single_and_multi(request.query)
    body, is_base64 = _body_field(request.body)
    return {
        "resource": match.resource,
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": match.path_parameters or None,
        "stageVariables": None,
        "requestContext": _request_context(
            request, match, request_id=request_id, caller_sub=caller_sub, stage=stage, now=now
        ),
        "body": body,
        "isBase64Encoded": is_base64,
    }


def _request_context(
    request: HttpRequest, match: RouteMatch, *, request_id: str, caller_sub: str, stage: str, now: datetime
) -> dict[str, Any]:
    headers = {name.lower(): value for name, value in request.headers}
    return {
        "accountId": LOCAL_ACCOUNT,
        "apiId": LOCAL_API_ID,
        "domainName": request.host,
        "domainPrefix": request.host.split(".", 1)[0],
        "extendedRequestId": request_id,
        "httpMethod": request.method,
        "identity": {
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent"),
            "user": None,
            "accountId": None,
        },
        # On the execute-api domain the stage is the first path segment; the event's own "path" has no stage.
        "path": f"/{stage}{request.path}",
        "protocol": "HTTP/1.1",
        "requestId": request_id,
        "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "requestTimeEpoch": int(now.timestamp() * 1000),
        "resourceId": LOCAL_API_ID,
        "resourcePath": match.resource,
        "stage": stage,
        # A Cognito user-pool authorizer passes the ID token's claims, all as strings.
        "authorizer": {
            "claims": {"sub": caller_sub, "cognito:username": caller_sub, "token_use": "id", "iss": "local-mode"}
        },
    }


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object the handler and Powertools read."""

    aws_request_id: str = field(default_factory=new_request_id)
    function_name: str = FUNCTION_NAME
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:local:{LOCAL_ACCOUNT}:function:{FUNCTION_NAME}"
    log_group_name: str = f"/aws/lambda/{FUNCTION_NAME}"
    log_stream_name: str = "local"
    _deadline: float = field(default_factory=lambda: time.monotonic() + INTEGRATION_TIMEOUT_SECONDS)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


# ---------------------------------------------------------------------------------------------------------
# Lambda proxy response -> HTTP


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class MalformedProxyResponse(ValueError):
    """The function answered something API Gateway would refuse (it answers 502 then)."""


# The server computes these itself; a value from the function would contradict the real body length.
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection"}


def http_reply(response: Any) -> HttpReply:
    """``headers`` and ``multiValueHeaders`` merge as in API Gateway: for a name in both, only the
    multi-value list is kept."""
    if not isinstance(response, Mapping) or not isinstance(response.get("statusCode"), int):
        raise MalformedProxyResponse("the proxy response has no integer statusCode")
    multi: Mapping[str, list[Any]] = response.get("multiValueHeaders") or {}
    single: Mapping[str, Any] = response.get("headers") or {}
    taken = {name.lower() for name in multi}
    headers = [(name, str(value)) for name, values in multi.items() for value in values]
    headers += [(name, str(value)) for name, value in single.items() if name.lower() not in taken]
    headers = [(name, value) for name, value in headers if name.lower() not in _HOP_BY_HOP]
    return HttpReply(status=response["statusCode"], headers=headers, body=_body_bytes(response))


def _body_bytes(response: Mapping[str, Any]) -> bytes:
    body = response.get("body")
    if body is None:
        return b""
    if response.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (ValueError, TypeError) as error:
            raise MalformedProxyResponse("isBase64Encoded but the body is not base64") from error
    return str(body).encode("utf-8")
