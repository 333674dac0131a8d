"""The local front behaves like the deployed API Gateway: limits, validation, CORS, unknown routes, identity,
the proxy event it builds and the response it turns back into HTTP. Over real HTTP on a free port."""

from __future__ import annotations

import http.client
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from liveness import handler
from liveness.routes import CORS_ALLOW_HEADERS, CORS_MAX_AGE_SECONDS, ROUTES

from local.gateway import GATEWAY_MAX_BODY_BYTES, LAMBDA_MAX_PAYLOAD_BYTES
from testkit.faces import face
from tests.local.conftest import StartServer
from tests.local.support import ALLOWED_ORIGIN, DISALLOWED_ORIGIN, OTHER_ALLOWED_ORIGIN, blank_bgr, call, data_url, jpeg
from tests.runtime.session_helpers import ScriptedAnalyzer

SESSION_ID = "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"


class Spy:
    """Stands in for lambda_handler: records events and answers a fixed proxy response."""

    def __init__(self, response: dict[str, Any] | None = None, error: Exception | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.response = response or {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}
        self.error = error

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        assert context.get_remaining_time_in_millis() > 0 and context.aws_request_id
        self.events.append(event)
        if self.error:
            raise self.error
        return self.response


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    """Replaces the function for servers started after it (LocalApi picks lambda_handler at start)."""
    fake = Spy()
    monkeypatch.setattr(handler, "lambda_handler", fake)
    return fake


def assert_gateway_error(reply: Any, status: int, code: str) -> dict[str, Any]:
    """The stack's gateway-response shape and CORS headers (the primary origin, as a gateway response has)."""
    assert reply.status == status, reply.raw
    body = reply.json
    assert set(body) == {"code", "message", "requestId"} and body["code"] == code
    assert body["requestId"] == reply.header("x-amzn-RequestId")
    assert reply.header("Access-Control-Allow-Origin") == ALLOWED_ORIGIN
    assert reply.header("Access-Control-Allow-Credentials") is None
    return body


# --- CORS ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/detect", "/sessions", f"/sessions/{SESSION_ID}", f"/sessions/{SESSION_ID}/frames", "/"]
)
def test_preflight_from_an_allowed_origin(start_server: StartServer, spy: Spy, path: str) -> None:
    server = start_server(ScriptedAnalyzer())
    reply = call(
        server.url, "OPTIONS", path, headers={"Origin": OTHER_ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert reply.status == 204 and reply.raw == b""
    assert reply.header("Access-Control-Allow-Origin") == OTHER_ALLOWED_ORIGIN
    assert reply.header("Access-Control-Allow-Methods") == "GET,POST,OPTIONS"
    assert reply.header("Access-Control-Allow-Headers") == ",".join(CORS_ALLOW_HEADERS)
    assert reply.header("Access-Control-Max-Age") == str(CORS_MAX_AGE_SECONDS) == "600"
    assert reply.header("Vary") == "Origin"
    assert reply.header("Access-Control-Allow-Credentials") is None
    assert spy.events == []  # a mock integration in AWS: the function never sees preflights


def test_preflight_from_a_disallowed_origin_gets_no_allow_origin(start_server: StartServer, spy: Spy) -> None:
    server = start_server(ScriptedAnalyzer())
    reply = call(server.url, "OPTIONS", "/detect", headers={"Origin": DISALLOWED_ORIGIN})
    assert reply.status == 204
    assert reply.header("Access-Control-Allow-Origin") is None
    assert reply.header("Access-Control-Allow-Credentials") is None


def test_function_responses_carry_cors_for_listed_origins_only(start_server: StartServer) -> None:
    # The function's own CORS (Powertools) reads the same ALLOWED_ORIGINS the front uses.
    server = start_server(ScriptedAnalyzer())
    allowed = call(server.url, "POST", "/sessions", {}, headers={"Origin": OTHER_ALLOWED_ORIGIN})
    assert allowed.status == 201 and allowed.header("Access-Control-Allow-Origin") == OTHER_ALLOWED_ORIGIN
    refused = call(server.url, "POST", "/sessions", {}, headers={"Origin": DISALLOWED_ORIGIN})
    assert refused.status == 201 and refused.header("Access-Control-Allow-Origin") is None
    assert allowed.header("Access-Control-Allow-Credentials") is None


# --- size ----------------------------------------------------------------------------------------------------


def _declare_only(url: str, length: int) -> http.client.HTTPResponse:
    """Send headers announcing ``length`` bytes and no body at all: a 413 proves the body was never read."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.putrequest("POST", "/detect")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(length))
    connection.endheaders()
    return connection.getresponse()


@pytest.mark.parametrize(
    ("length", "message"),
    [(LAMBDA_MAX_PAYLOAD_BYTES + 1, "6 MB payload limit"), (GATEWAY_MAX_BODY_BYTES + 1, "Request Too Long")],
)
def test_oversize_body_is_413_before_it_is_read(start_server: StartServer, spy: Spy, length: int, message: str) -> None:
    server = start_server(ScriptedAnalyzer())
    response = _declare_only(server.url, length)
    body = json.loads(response.read())
    assert response.status == 413 and body["code"] == "PAYLOAD_TOO_LARGE" and message in body["message"]
    assert set(body) == {"code", "message", "requestId"}
    assert response.getheader("Access-Control-Allow-Origin") == ALLOWED_ORIGIN
    assert spy.events == []


def test_body_under_6_mb_whose_event_is_over_6_mb_is_413(start_server: StartServer, spy: Spy) -> None:
    # The Lambda payload is the whole event (headers, JSON escaping), not just the body.
    server = start_server(ScriptedAnalyzer())
    raw = json.dumps({"image_bytes": "A" * (LAMBDA_MAX_PAYLOAD_BYTES - 100)}).encode()
    assert len(raw) <= LAMBDA_MAX_PAYLOAD_BYTES
    body = assert_gateway_error(call(server.url, "POST", "/detect", raw=raw), 413, "PAYLOAD_TOO_LARGE")
    assert "Lambda" in body["message"] and spy.events == []


def test_chunked_body_over_the_limit_is_413(start_server: StartServer, spy: Spy) -> None:
    server = start_server(ScriptedAnalyzer())
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    chunk = b"A" * (1024 * 1024)
    connection.request(
        "POST", "/detect", body=iter([chunk] * 7), headers={"Content-Type": "application/json"}, encode_chunked=True
    )
    response = connection.getresponse()
    assert response.status == 413 and json.loads(response.read())["code"] == "PAYLOAD_TOO_LARGE"
    assert spy.events == []


# --- validation ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b'{"image_bytes": ', b"[" * 100_000 + b"]" * 100_000, b'{"width": ' + b"9" * 5000 + b"}"],
    ids=["truncated", "nested-100k-deep", "5000-digit-number"],
)
def test_invalid_json_is_400_from_the_front(start_server: StartServer, spy: Spy, raw: bytes) -> None:
    server = start_server(ScriptedAnalyzer())
    body = assert_gateway_error(call(server.url, "POST", "/detect", raw=raw), 400, "INVALID_REQUEST")
    assert body["message"].startswith("Invalid request: [Invalid JSON body")
    assert spy.events == []


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/detect", {}, 'object has missing required properties (["image_bytes"])'),
        (
            "/detect",
            {"image_bytes": 7},
            'instance type (integer) does not match any allowed primitive type (allowed: ["string"]) (at /image_bytes)',
        ),
        ("/detect", {"image_bytes": ""}, "string is too short (length: 0, required minimum: 1) (at /image_bytes)"),
        (
            "/sessions",
            {"steps": 9},
            "numeric instance is greater than the required maximum (maximum: 5, found: 9) (at /steps)",
        ),
        (
            "/sessions",
            {"stepCodes": ["SMILE"]},
            'object instance has properties which are not allowed by the schema: ["stepCodes"]',
        ),
        (f"/sessions/{SESSION_ID}/frames", {"image": "x", "mirrored": "yes"}, "(at /mirrored)"),
    ],
)
def test_schema_violation_is_answered_by_the_front(
    start_server: StartServer, spy: Spy, path: str, body: Any, expected: str
) -> None:
    server = start_server(ScriptedAnalyzer())
    error = assert_gateway_error(call(server.url, "POST", path, body), 400, "INVALID_REQUEST")
    assert error["message"].startswith("Invalid request: [") and expected in error["message"]
    assert spy.events == []  # the function was never invoked


def test_schema_violation_reaches_neither_the_analyzer_nor_the_disk(start_server: StartServer, data_dir: Path) -> None:
    analyzer = ScriptedAnalyzer()
    server = start_server(analyzer)
    image = data_url(jpeg(blank_bgr()))
    reply = call(server.url, "POST", "/detect", {"image_bytes": image, "width": "wide"})
    assert_gateway_error(reply, 400, "INVALID_REQUEST")
    assert analyzer.detect_calls == 0
    assert not (data_dir / "archive").exists() or not any((data_dir / "archive").rglob("*.*"))


def test_a_body_of_another_type_skips_the_model_and_the_function_validates(start_server: StartServer) -> None:
    # API Gateway picks the model by Content-Type; a text/plain body has none, so the function answers.
    server = start_server(ScriptedAnalyzer())
    reply = call(server.url, "POST", "/detect", raw=b"not json", headers={"Content-Type": "text/plain"})
    assert reply.status == 400 and reply.json["code"] == "INVALID_JSON"


# --- routes and identity -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("POST", "/detect/"),
        ("OPTIONS", "/nope"),
        ("PUT", "/"),  # a parent resource with no method of its own is as undefined as an unknown path
        ("DELETE", f"/sessions/{SESSION_ID}/frames/1"),
    ],
)
def test_unknown_paths_get_api_gateways_403(start_server: StartServer, spy: Spy, method: str, path: str) -> None:
    server = start_server(ScriptedAnalyzer())
    body = assert_gateway_error(call(server.url, method, path), 403, "MISSING_AUTHENTICATION_TOKEN")
    assert body["message"] == "Missing Authentication Token" and spy.events == []


# Each route's resource, and its Allow header, written out here (not derived) so that a change to either shows.
ALLOW = {
    "/detect": "POST, OPTIONS",
    "/sessions": "POST, OPTIONS",
    f"/sessions/{SESSION_ID}": "GET, OPTIONS",
    f"/sessions/{SESSION_ID}/frames": "POST, OPTIONS",
    f"/sessions/{SESSION_ID}/light": "POST, OPTIONS",
    f"/sessions/{SESSION_ID}/light/frames": "POST, OPTIONS",
}
OTHER_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "TRACE")


@pytest.mark.parametrize(("path", "allow"), ALLOW.items(), ids=list(ALLOW))
def test_a_method_a_route_does_not_define_is_405_with_allow(
    start_server: StartServer, spy: Spy, path: str, allow: str
) -> None:
    server = start_server(ScriptedAnalyzer())
    for method in (m for m in OTHER_METHODS if m not in allow.split(", ")):
        reply = call(server.url, method, path, headers={"X-Local-User": "not a user!"})  # refused before identity
        assert reply.status == 405 and reply.header("Allow") == allow, (method, reply.raw)
        if method != "HEAD":
            body = assert_gateway_error(reply, 405, "METHOD_NOT_ALLOWED")
            assert "Allow header" in body["message"]
    assert spy.events == []
    assert len(ALLOW) == len(ROUTES)  # every route's resource is here


def test_a_malformed_dev_user_is_401(start_server: StartServer, spy: Spy) -> None:
    server = start_server(ScriptedAnalyzer())
    assert_gateway_error(call(server.url, "POST", "/sessions", {}, user="not a user!"), 401, "UNAUTHORIZED")
    assert spy.events == []


def test_a_crashing_function_is_502(start_server: StartServer, spy: Spy) -> None:
    spy.error = RuntimeError("boom")
    server = start_server(ScriptedAnalyzer())
    body = assert_gateway_error(call(server.url, "POST", "/sessions", {}), 502, "INTEGRATION_FAILURE")
    assert "boom" not in body["message"]


# --- the event and the response ------------------------------------------------------------------------------


def test_the_event_is_an_api_gateway_rest_proxy_event(start_server: StartServer, spy: Spy) -> None:
    server = start_server(ScriptedAnalyzer())
    call(
        server.url,
        "POST",
        f"/sessions/{SESSION_ID}/frames?a=1&a=2&b=3",
        {"image": "x"},
        user="alice",
        headers={"X-Trace": "t1"},
    )
    event = spy.events[0]
    assert event["resource"] == "/sessions/{id}/frames" and event["path"] == f"/sessions/{SESSION_ID}/frames"
    assert event["httpMethod"] == "POST" and event["pathParameters"] == {"id": SESSION_ID}
    assert event["queryStringParameters"] == {"a": "2", "b": "3"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["3"]}
    assert event["headers"]["X-Trace"] == "t1" and event["multiValueHeaders"]["X-Trace"] == ["t1"]
    assert event["headers"]["X-Forwarded-Proto"] == "http"
    assert event["stageVariables"] is None
    assert json.loads(event["body"]) == {"image": "x"} and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "v1" and context["path"] == f"/v1/sessions/{SESSION_ID}/frames"
    assert context["resourcePath"] == "/sessions/{id}/frames" and context["httpMethod"] == "POST"
    assert context["identity"]["sourceIp"] == "127.0.0.1" and context["requestTimeEpoch"] > 0
    assert context["authorizer"]["claims"]["sub"] == "alice"
    assert len(context["requestId"]) == 36


def test_the_default_caller_and_a_bodyless_get(start_server: StartServer, spy: Spy) -> None:
    server = start_server(ScriptedAnalyzer())
    call(server.url, "GET", f"/sessions/{SESSION_ID}")
    event = spy.events[0]
    assert event["requestContext"]["authorizer"]["claims"]["sub"] == "local-dev-user"
    assert (
        event["body"] is None
        and event["queryStringParameters"] is None
        and event["multiValueQueryStringParameters"] is None
    )


def test_a_binary_body_is_base64(start_server: StartServer, spy: Spy) -> None:
    server = start_server(ScriptedAnalyzer())
    call(server.url, "POST", "/detect", raw=b"\xff\xd8\xff\x00binary", headers={"Content-Type": "image/jpeg"})
    event = spy.events[0]
    assert event["isBase64Encoded"] is True and event["body"] == "/9j/AGJpbmFyeQ=="


def test_proxy_response_headers_merge_like_api_gateway(start_server: StartServer, spy: Spy) -> None:
    spy.response = {
        "statusCode": 418,
        "headers": {"X-Single": "s", "X-Both": "from-headers", "Content-Type": "text/plain"},
        "multiValueHeaders": {"X-Both": ["m1", "m2"], "Set-Cookie": ["a=1", "b=2"]},
        "body": "aGVsbG8=",
        "isBase64Encoded": True,
    }
    server = start_server(ScriptedAnalyzer())
    reply = call(server.url, "GET", f"/sessions/{SESSION_ID}")
    assert reply.status == 418 and reply.raw == b"hello"
    assert reply.header("X-Single") == "s" and reply.headers.get_all("X-Both") == ["m1", "m2"]
    assert reply.headers.get_all("Set-Cookie") == ["a=1", "b=2"]


# --- web client and logs -------------------------------------------------------------------------------------


def test_static_web_client_is_served_and_api_routes_win(start_server: StartServer, tmp_path: Path) -> None:
    web = tmp_path / "web"
    (web / "sessions").mkdir(parents=True)
    (web / "index.html").write_text("<h1>liveness</h1>")
    (web / "app.js").write_text("console.log(1)")
    (web / "sessions" / SESSION_ID).write_text("shadowed by the API")
    server = start_server(ScriptedAnalyzer(), web_dir=web)
    index = call(server.url, "GET", "/")
    assert index.status == 200 and index.raw == b"<h1>liveness</h1>" and "text/html" in index.header("Content-Type")
    assert call(server.url, "GET", "/app.js").raw == b"console.log(1)"
    api = call(server.url, "GET", f"/sessions/{SESSION_ID}")
    assert api.status == 404 and api.json["code"] == "SESSION_NOT_FOUND"
    assert call(server.url, "GET", "/missing.js").status == 403
    assert call(server.url, "GET", "/../pyproject.toml").status in (400, 403, 404)


def test_one_log_line_per_request_and_never_a_body(start_server: StartServer, caplog: pytest.LogCaptureFixture) -> None:
    analyzer = ScriptedAnalyzer()
    analyzer.script(face())
    server = start_server(analyzer)
    image = data_url(jpeg(blank_bgr()))
    with caplog.at_level(logging.INFO, logger="local.server"):
        assert call(server.url, "POST", "/detect", {"image_bytes": image}).status == 200
    lines = [record.getMessage() for record in caplog.records if record.name == "local.server"]
    assert len(lines) == 1
    method, path, status, latency = lines[0].split(" ")
    assert (method, path, status) == ("POST", "/detect", "200") and latency.endswith("ms")
    assert image[30:90] not in caplog.text
