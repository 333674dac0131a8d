"""Requests the HTTP server itself refuses, before any route: every one gets the API's JSON error shape (no
Werkzeug or http.server HTML page), with a fixed message that never quotes the request line. Raw sockets,
because an HTTP client library refuses to send most of these."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.local.conftest import StartServer
from tests.local.support import ALLOWED_ORIGIN, call
from tests.runtime.session_helpers import ScriptedAnalyzer


def raw_exchange(url: str, request: bytes, *, half_close: bool = False) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
        connection.sendall(request)
        if half_close:
            connection.shutdown(socket.SHUT_WR)  # the client stops sending: the body stays short
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def assert_json_error(status: int, headers: dict[str, str], body: bytes, expected: int, code: str) -> dict[str, Any]:
    assert status == expected, body[:300]
    assert headers["content-type"] == "application/json"
    document = json.loads(body)
    assert set(document) == {"code", "message", "requestId"} and document["code"] == code
    assert headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    return document


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /sessions/a b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400, "INVALID_REQUEST"),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 414, "URI_TOO_LONG"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70_000 + b"\r\n\r\n", 431, "HEADERS_TOO_LARGE"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Many: 1\r\n" * 150 + b"\r\n", 431, "HEADERS_TOO_LARGE"),
        (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", 505, "HTTP_VERSION_NOT_SUPPORTED"),
        (b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400, "INVALID_REQUEST"),
    ],
    ids=["space-in-target", "uri-70KB", "header-70KB", "150-headers", "http-9.9", "bad-request-line"],
)
def test_http_level_refusals_use_the_json_error_shape(
    start_server: StartServer, request_bytes: bytes, status: int, code: str
) -> None:
    server = start_server(ScriptedAnalyzer())
    document = assert_json_error(*raw_exchange(server.url, request_bytes), status, code)
    assert len(document["message"]) < 100 and "aaaa" not in document["message"]


@pytest.mark.parametrize(
    ("request_bytes", "half_close"),
    [
        (
            b"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
            False,
        ),
        (
            b"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n5\r\n{}",
            True,
        ),
        (
            b"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
            b"Connection: close\r\n\r\n" + b'{"image_bytes": "',
            True,
        ),
    ],
    ids=["bad-chunk-size", "chunked-cut-short", "shorter-than-content-length"],
)
def test_malformed_or_short_bodies_are_400_json(
    start_server: StartServer, request_bytes: bytes, half_close: bool
) -> None:
    server = start_server(ScriptedAnalyzer())
    assert_json_error(*raw_exchange(server.url, request_bytes, half_close=half_close), 400, "INVALID_REQUEST")


@pytest.mark.parametrize("session_id", ['"', "%22", "a%3Fb", "%F0%9F%98%80", "not-a-uuid"])
def test_every_malformed_session_id_is_400(start_server: StartServer, session_id: str) -> None:
    """Quotes, "?" and emoji are outside the resolver's path pattern: they were 404 NOT_FOUND, now 400 like any
    other malformed id."""
    server = start_server(ScriptedAnalyzer())
    for method, path in (("GET", f"/sessions/{session_id}"), ("POST", f"/sessions/{session_id}/frames")):
        reply = call(server.url, method, path, {"image": "x"} if method == "POST" else None)
        assert (reply.status, reply.json["code"]) == (400, "INVALID_REQUEST"), (path, reply.raw)


def test_echoes_of_client_input_are_bounded(start_server: StartServer) -> None:
    server = start_server(ScriptedAnalyzer())
    huge_key = "k" * 500_000
    for content_type in ("application/json", "text/plain"):  # the front's model, then the function's validator
        reply = call(
            server.url,
            "POST",
            "/sessions",
            raw=json.dumps({huge_key: 1}).encode(),
            headers={"Content-Type": content_type},
        )
        assert (reply.status, reply.json["code"]) == (400, "INVALID_REQUEST")
        assert len(reply.raw) < 1000 and "kkkk" in reply.json["message"]
    media_type = "image/" + "x" * 200_000
    reply = call(server.url, "POST", "/detect", {"image_bytes": f"data:{media_type};base64,AAAA"})
    assert (reply.status, reply.json["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert len(reply.raw) < 1000


def test_image_bombs_over_http_are_4xx_and_the_server_keeps_answering(start_server: StartServer) -> None:
    from testkit.bombs import header_only_jpeg, png_length_bomb, scan_bomb
    from testkit.images import scene_bgr
    from tests.local.support import data_url, jpeg

    analyzer = ScriptedAnalyzer()
    analyzer.default_faces = []
    server = start_server(analyzer)
    for raw, media_type, code in (
        (scan_bomb(), "image/jpeg", "IMAGE_TOO_COMPLEX"),
        (png_length_bomb(), "image/png", "INVALID_IMAGE"),
        (header_only_jpeg(), "image/jpeg", "INVALID_IMAGE"),
    ):
        reply = call(server.url, "POST", "/detect", {"image_bytes": data_url(raw, media_type)})
        assert (reply.status, reply.json["code"]) == (400, code)
        normal = call(server.url, "POST", "/detect", {"image_bytes": data_url(jpeg(scene_bgr()))})
        assert (normal.status, normal.json["code"]) == (422, "NO_FACE")  # decoded and analysed
    assert analyzer.detect_calls == 3
