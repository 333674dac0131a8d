"""The local front against slow and hostile clients: strict framing, read and idle timeouts, a chunk size past
the limit, and the connection cap. Raw sockets, because an HTTP client library will not send these.

Hang bounds are generous (HANG_SECONDS): they tell "answered" from "held", never measure latency."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from local.connections import ConnectionLimits
from tests.local.conftest import StartServer
from tests.local.support import call
from tests.local.test_http_errors import assert_json_error
from tests.runtime.session_helpers import ScriptedAnalyzer

HANG_SECONDS = 5.0
# Short timeouts, so that a test sees them fire well inside HANG_SECONDS.
QUICK = ConnectionLimits(idle_timeout=0.5, read_timeout=1.0)
DETECT_HEAD = b"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=HANG_SECONDS)


def read_answer(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Everything until the server closes; socket.timeout (a failure) if it holds the connection instead."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := connection.recv(65536):
            received += chunk
    if not received:
        return 0, {}, b""
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def exchange(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with connect(url) as connection:
        connection.sendall(request)
        return read_answer(connection)


# --- framing -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("framing", "body"),
    [
        (b"Content-Length: 2\r\nContent-Length: 0\r\n", b""),
        (b"Content-Length: 2, 0\r\n", b""),
        (b"Content-Length: +2\r\n", b"{}"),
        (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
    ],
    ids=["two-lengths", "length-list", "signed-length", "length-and-chunked"],
)
def test_ambiguous_framing_is_a_400(start_server: StartServer, framing: bytes, body: bytes) -> None:
    """Each of these requests would otherwise be answered (200): the front refuses to guess where it ends."""
    server = start_server(ScriptedAnalyzer())
    head = b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    assert_json_error(*exchange(server.url, head + framing + b"\r\n" + body), 400, "INVALID_REQUEST")


def test_a_repeated_identical_length_is_one_length(start_server: StartServer) -> None:
    server = start_server(ScriptedAnalyzer())
    request = (
        b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    assert exchange(server.url, request)[0] == 200


def test_a_chunk_size_past_the_limit_is_refused_before_its_bytes(start_server: StartServer) -> None:
    """Nothing follows the size line; the answer comes at once, not after a read timeout (15 s by default)."""
    server = start_server(ScriptedAnalyzer())
    with connect(server.url) as connection:
        connection.sendall(DETECT_HEAD + b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n")
        assert_json_error(*read_answer(connection), 413, "PAYLOAD_TOO_LARGE")


# --- timeouts ------------------------------------------------------------------------------------------------


def test_a_body_shorter_than_its_length_is_a_408_after_the_idle_timeout(start_server: StartServer) -> None:
    server = start_server(ScriptedAnalyzer(), limits=QUICK)
    with connect(server.url) as connection:
        connection.sendall(DETECT_HEAD + b"Content-Length: 1000\r\n\r\n" + b'{"image_bytes": "')
        assert_json_error(*read_answer(connection), 408, "REQUEST_TIMEOUT")


def test_headers_that_stop_arriving_are_a_408(start_server: StartServer) -> None:
    server = start_server(ScriptedAnalyzer(), limits=QUICK)
    with connect(server.url) as connection:
        connection.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n")
        assert_json_error(*read_answer(connection), 408, "REQUEST_TIMEOUT")


def test_an_idle_connection_is_closed_without_an_answer(start_server: StartServer) -> None:
    server = start_server(ScriptedAnalyzer(), limits=QUICK)
    with connect(server.url) as connection:
        assert read_answer(connection) == (0, {}, b"")


def trickle(url: str, stop: threading.Event, answers: list[int]) -> None:
    """Slowloris: one header byte at a time, each well inside the idle timeout, never finishing the request."""
    with connect(url) as connection:
        connection.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n")
        with contextlib.suppress(OSError):
            while not stop.wait(QUICK.idle_timeout / 5):
                connection.sendall(b"X")
        answers.append(read_answer(connection)[0])


@contextlib.contextmanager
def slowloris(url: str, count: int) -> Iterator[list[int]]:
    stop, answers = threading.Event(), []
    threads = [threading.Thread(target=trickle, args=(url, stop, answers), daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield answers
    finally:
        stop.set()
        for thread in threads:
            thread.join(HANG_SECONDS)


def test_a_trickling_request_is_cut_at_the_read_timeout(start_server: StartServer) -> None:
    server = start_server(ScriptedAnalyzer(), limits=QUICK)
    deadline = time.monotonic() + HANG_SECONDS
    with slowloris(server.url, 1) as answers:
        while not answers and time.monotonic() < deadline:
            time.sleep(0.05)
        assert answers == [408]  # answered while the client was still sending, not when it gave up


# --- the connection cap --------------------------------------------------------------------------------------


def test_connections_over_the_cap_get_a_503_and_no_thread(start_server: StartServer) -> None:
    """The held connections are too young to evict: newcomers wait a moment for a place, then get the 503."""
    limits = ConnectionLimits(
        idle_timeout=HANG_SECONDS * 4,
        read_timeout=HANG_SECONDS * 4,
        max_connections=4,
        eviction_grace=HANG_SECONDS * 4,
        slot_wait=0.05,
    )
    server = start_server(ScriptedAnalyzer(), limits=limits)
    before = threading.active_count()
    held = [connect(server.url) for _ in range(limits.max_connections)]
    try:
        for connection in held:
            connection.sendall(b"G")
        time.sleep(0.2)
        refusals = []
        for _ in range(20):
            with connect(server.url) as connection:
                connection.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                refusals.append(read_answer(connection))
        assert threading.active_count() - before <= limits.max_connections
    finally:
        for connection in held:
            connection.close()
    for status, headers, body in refusals:
        assert_json_error(status, headers, body, 503, "SERVER_BUSY")
        assert headers["retry-after"] == "1"


def test_clients_are_served_while_slowloris_holds_every_slot(start_server: StartServer) -> None:
    """The slow connections hold every place and would for 20 s (the read timeout here): the newcomer is served
    at once, because the connection slowest to send its request makes room for it."""
    limits = ConnectionLimits(idle_timeout=2.0, read_timeout=HANG_SECONDS * 4, max_connections=8, eviction_grace=0.2)
    server = start_server(ScriptedAnalyzer(), limits=limits)
    with slowloris(server.url, limits.max_connections):
        time.sleep(0.5)
        replies = [call(server.url, "GET", "/openapi.json") for _ in range(3)]
    assert [reply.status for reply in replies] == [200, 200, 200]


def test_a_request_already_read_is_never_evicted(start_server: StartServer) -> None:
    """Two requests wait in the function and fill the cap; a newcomer gets the 503, and both still get answers."""
    limits = ConnectionLimits(max_connections=2, eviction_grace=0.0, slot_wait=0.2)
    server = start_server(ScriptedAnalyzer(), limits=limits)
    entered, release = threading.Semaphore(0), threading.Event()
    real_invoke = server.api.invoke

    def slow_invoke(event: dict, context: object) -> object:
        entered.release()
        release.wait(HANG_SECONDS)
        return real_invoke(event, context)

    server.api.invoke = slow_invoke
    server.api._function_lock = contextlib.nullcontext()  # both wait in the function at once
    statuses: list[int] = []
    path = "/sessions/00000000-0000-4000-8000-000000000001"
    threads = [threading.Thread(target=lambda: statuses.append(call(server.url, "GET", path).status)) for _ in "ab"]
    for thread in threads:
        thread.start()
    assert entered.acquire(timeout=HANG_SECONDS) and entered.acquire(timeout=HANG_SECONDS)
    newcomer = call(server.url, "GET", "/openapi.json")
    release.set()
    for thread in threads:
        thread.join(HANG_SECONDS)
    assert newcomer.status == 503 and newcomer.json["code"] == "SERVER_BUSY"
    assert statuses == [404, 404]


def test_an_evicted_request_is_never_run(start_server: StartServer, caplog: pytest.LogCaptureFixture) -> None:
    """Its headers end because the front closed it, not because the client finished them: it never reaches the
    function (the front logs every request it runs)."""
    limits = ConnectionLimits(max_connections=1, eviction_grace=0.1)
    server = start_server(ScriptedAnalyzer(), limits=limits)
    with caplog.at_level(logging.INFO, logger="local.server"), connect(server.url) as slow:
        slow.sendall(b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nX-Local-User: slow\r\n")
        time.sleep(0.3)
        assert call(server.url, "GET", "/openapi.json").status == 200
        assert read_answer(slow) == (0, {}, b"")
        time.sleep(1.0)  # what its thread would do next takes milliseconds
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("POST")] == []
