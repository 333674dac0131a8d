"""The local HTTP front: a threaded Werkzeug WSGI server that plays API Gateway in front of the REAL handler.

Each request: route match -> limits and identity -> schema validation -> API Gateway proxy event ->
``liveness.handler.lambda_handler`` -> HTTP. ``/openapi.json`` is the API's contract. Paths that are not API
routes fall back to the static web client (``web/``) when it exists. One log line per request (method, path, status, ms); never a body.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from liveness import handler
from liveness.dependencies import Dependencies
from liveness.errors import clip
from liveness.openapi import openapi_document
from liveness.routes import ROUTES, STAGE, allowed_methods
from liveness.settings import Settings
from liveness.wiring import build_dependencies
from werkzeug.exceptions import HTTPException
from werkzeug.serving import DechunkedInput, ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from . import REPO_ROOT
from .connections import (
    BodyTooLarge,
    BoundedDechunkedInput,
    ConnectionCap,
    ConnectionLimits,
    DeadlineReader,
    FramingError,
    check_framing,
)
from .events import (
    HttpReply,
    HttpRequest,
    LambdaContext,
    MalformedProxyResponse,
    RouteMatch,
    RouteTable,
    http_reply,
    new_request_id,
    proxy_event,
)
from .gateway import (
    LAMBDA_MAX_PAYLOAD_BYTES,
    LOCAL_CONTRACT_SERVER,
    USER_HEADER,
    Cors,
    GatewayError,
    caller_sub,
    check_declared_size,
    check_event_size,
    http_error,
    integration_failure,
    method_not_allowed,
    missing_authentication_token,
    payload_too_large,
    validate_body,
)
from .static import StaticFiles
from .tarpit import RefusalTarpit, is_held_status, peer_key
from .workers import WorkerPool

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_DATA_DIR = REPO_ROOT / ".local-data"
DEFAULT_WEB_DIR = REPO_ROOT / "web"
OPENAPI_PATH = "/openapi.json"

_READ_CHUNK_BYTES = 256 * 1024
REQUEST_READ_KEY = "local.request_read"  # the environ's callback: the request has arrived whole
_SHUTDOWN_POLL_SECONDS = 0.05  # how soon stop() takes effect (tests start and stop many servers)

Invoke = Callable[[dict[str, Any], Any], Any]

log = logging.getLogger("local.server")

# The handler keeps per-request state in module and class globals (the Powertools resolver's current event,
# the logger's keys, the metrics buffer), exactly as one Lambda execution environment does. Lambda never
# runs two events at once in an environment, so neither do we: the server reads, validates and answers
# in parallel threads; the function call itself runs either in this process, one at a time (workers=1, and
# the tests, which inject their own collaborators), or in a pool of worker processes, one environment each
# (local/workers.py).
_FUNCTION_LOCK = threading.Lock()


def default_origins(port: int) -> str:
    return f"http://127.0.0.1:{port},http://localhost:{port}"


def local_settings(*, data_dir: Path, port: int = DEFAULT_PORT, env: Mapping[str, str] | None = None) -> Settings:
    """The function's settings in local mode: embedded analyzer, files under ``data_dir``, and the local
    origins, unless the environment says otherwise (e.g. ``ANALYZER=rekognition``)."""
    values = dict(os.environ if env is None else env)
    values.setdefault("ANALYZER", "local")
    values.setdefault("STORAGE", "file")
    values.setdefault("ALLOWED_ORIGINS", default_origins(port))
    values["DATA_DIR"] = str(data_dir)
    return Settings.from_env(values)


class LocalApi:
    """The WSGI application: API Gateway's behaviour around one call of the function per request."""

    def __init__(
        self,
        *,
        routes: RouteTable,
        cors: Cors,
        stage: str = STAGE,
        invoke: Invoke | None = None,
        web_dir: Path | None = None,
        concurrent: bool = False,
        settings: Settings | None = None,
    ) -> None:
        self.routes = routes
        self._allowed_methods = allowed_methods(routes.routes)  # a 405's Allow header, per resource with routes
        self.cors = cors
        self.stage = stage
        self.invoke = invoke or handler.lambda_handler
        # ``concurrent``: ``invoke`` runs each call in its own environment (a worker process), so calls may overlap.
        self._function_lock = contextlib.nullcontext() if concurrent else _FUNCTION_LOCK
        self.web_dir = web_dir if web_dir is not None and web_dir.is_dir() else None
        self._static = StaticFiles(self.web_dir) if self.web_dir is not None else None
        # The contract, with the limits of the function's settings (the default ones when none are given).
        self._openapi_body = json.dumps(openapi_document(LOCAL_CONTRACT_SERVER, settings), indent=2).encode("utf-8")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        request = Request(environ)
        request_id = new_request_id()
        try:
            response = self._answer(request, request_id)
        except GatewayError as error:
            response = _to_response(error.reply(request_id, self.cors))
        except HTTPException as error:  # Werkzeug's own refusals while reading the request, as JSON
            response = _to_response(http_error(error.code or 400).reply(request_id, self.cors))
        except Exception:  # a bug in the front itself: the API's shape, never Werkzeug's HTML page
            log.exception("The local front failed on %s %s", request.method, request.path)
            response = _to_response(http_error(500).reply(request_id, self.cors))
        response.headers["x-amzn-RequestId"] = request_id
        log.info(
            "%s %s %d %.0fms",
            request.method,
            request.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response(environ, start_response)

    def _answer(self, request: Request, request_id: str) -> Response:
        match = self.routes.match(request.method, request.path)
        if request.method == "OPTIONS" and match is not None:
            return _to_response(
                HttpReply(status=204, headers=self.cors.preflight_headers(request.headers.get("Origin")), body=b"")
            )
        route = match.route if match is not None else None
        if match is None and request.method in ("GET", "HEAD") and request.path == OPENAPI_PATH:
            return self._openapi()
        if match is not None and route is None and match.resource in self._allowed_methods:
            raise method_not_allowed(self._allowed_methods[match.resource])
        if match is None or route is None:
            static = self._static_file(request)
            if static is None:
                raise missing_authentication_token()
            return static
        check_declared_size(request.content_length)
        sub = caller_sub(request.headers.get(USER_HEADER))
        body = _read_body(request)
        request.environ.get(REQUEST_READ_KEY, _nothing)()  # from now on this connection is never evicted
        validate_body(route, request.headers.get("Content-Type"), body)
        event = proxy_event(
            _http_request(request, body), match, request_id=request_id, caller_sub=sub, stage=self.stage
        )
        check_event_size(event)
        return _to_response(self._call_function(event, match))

    def _call_function(self, event: dict[str, Any], match: RouteMatch) -> HttpReply:
        try:
            with self._function_lock:
                result = self.invoke(event, LambdaContext())
            return http_reply(result)
        except MalformedProxyResponse:
            log.exception("The function returned a malformed proxy response for %s", match.resource)
        except Exception:  # the function crashed: in AWS an integration failure, and the traceback in its logs
            log.exception("The function raised for %s", match.resource)
        raise integration_failure()

    def _openapi(self) -> Response:
        """The contract (liveness/openapi.py), generated from the same route table and schemas as this front."""
        return Response(
            self._openapi_body, status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-store"}
        )

    def _static_file(self, request: Request) -> Response | None:
        """The web client, from the same origin; API routes were matched first, so they take precedence."""
        if self._static is None or request.method not in ("GET", "HEAD"):
            return None
        return self._static.response(request)


def _read_body(request: Request) -> bytes:
    """Read at most the Lambda payload limit. The declared length was checked already; this also stops a
    chunked body (no Content-Length) as soon as it grows past the limit."""
    chunks: list[bytes] = []
    total = 0
    try:
        while chunk := request.stream.read(_READ_CHUNK_BYTES):
            total += len(chunk)
            if total > LAMBDA_MAX_PAYLOAD_BYTES:
                raise payload_too_large(None)  # the server discards the rest after answering
            chunks.append(chunk)
    except (HTTPException, ValueError, OSError) as error:
        # A chunk size past the limit, a body that stopped arriving, a body shorter than its Content-Length
        # (Werkzeug: ClientDisconnected) or a malformed chunked body.
        if _caused_by(error, BodyTooLarge):
            raise payload_too_large(None) from None
        if _caused_by(error, TimeoutError):
            raise http_error(408) from None
        raise GatewayError(400, "INVALID_REQUEST", "The request body is malformed or shorter than declared.") from None
    return b"".join(chunks)


def _nothing() -> None:
    """What marks a request read when the WSGI server is not this module's (a test calling the app directly)."""


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    """Werkzeug's body stream raises its own ClientDisconnected while handling the socket's error."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _http_request(request: Request, body: bytes) -> HttpRequest:
    host, _, port = (request.host or "").partition(":")
    return HttpRequest(
        method=request.method,
        path=request.path,
        headers=list(request.headers.items()),
        query=list(request.args.items(multi=True)),
        body=body,
        source_ip=request.remote_addr or "127.0.0.1",
        host=host or "localhost",
        scheme=request.scheme,
        port=int(port) if port.isdigit() else (443 if request.scheme == "https" else 80),
    )


def _to_response(reply: HttpReply) -> Response:
    response = Response(reply.body, status=reply.status)
    response.headers.clear()  # only what the function or the gateway set (no default text/html)
    for name, value in reply.headers:
        response.headers.add(name, value)
    return response


class _RequestHandler(WSGIRequestHandler):
    """Werkzeug's handler, with the front's read deadlines and strict framing (local/connections.py)."""

    server: _FrontServer

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the plain socket reader: replaced by one that keeps the deadlines
        self._reader = DeadlineReader(self.connection, self.server.limits)
        self.rfile = io.BufferedReader(self._reader)
        self._answered = False
        self.server.cap.track(self._reader)

    def finish(self) -> None:
        self.server.cap.untrack(self._reader)
        super().finish()

    def handle_one_request(self) -> None:
        self._reader.start_request()
        self._answered = False
        self.command = None  # type: ignore[assignment]  # send_error reads it, even before a request line
        super().handle_one_request()  # a read timeout ends it quietly and closes the connection
        if self._reader.timed_out and self._reader.received and not self._answered:
            self.send_error(408)  # part of a request came, then stalled: say so (an idle connection just closes)

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self._reader.evicted:  # its headers ended with the eviction, not the client: never run it
            self.close_connection = True
            return False
        try:
            check_framing(self.headers)
        except FramingError:
            self.send_error(400)
            return False
        return True

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        environ[REQUEST_READ_KEY] = self._reader.request_read
        if isinstance(environ["wsgi.input"], DechunkedInput):
            environ["wsgi.input"] = BoundedDechunkedInput(self.rfile, LAMBDA_MAX_PAYLOAD_BYTES)
        return environ

    def send_response(self, code: int, message: str | None = None) -> None:
        self._answered = True
        self._reader.request_read()  # from now on never evicted: a held answer frees its thread only when answered
        tarpit = self.server.tarpit
        if tarpit is not None and is_held_status(code):
            tarpit.hold(peer_key(self.client_address[0]))  # an address, not a header a client rotates for free
        super().send_response(code, message)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: LocalApi logs each request itself, with its latency."""

    def log_error(self, format: str, *args: Any) -> None:
        """http.server's notes (a read timeout, a bad request line), one bounded line in the request log."""
        log.info("HTTP: %s", clip(format % args, 120))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The HTTP server's refusals of a request it cannot parse (a space in the target, a URI over 64 KB,
        oversized headers, an unknown method or HTTP version), in the API's JSON error shape instead of an HTML
        page. Their text quotes the request line, so it is logged bounded and never sent back."""
        log.info("HTTP %d before routing: %s", code, clip(message or "", 120))
        api = getattr(self.server, "app", None)
        cors = api.cors if isinstance(api, LocalApi) else Cors(())
        reply = http_error(code).reply(new_request_id(), cors)
        # A request line that failed to parse leaves http.server's default "HTTP/0.9", which would send the body
        # without a status line or headers; nobody speaks 0.9, so answer in HTTP/1.1 and close.
        self.request_version = "HTTP/1.1"
        self.close_connection = True
        self.send_response(code)
        self.send_header("Connection", "close")
        for name, value in reply.headers:
            self.send_header(name, value)
        body = reply.body if code >= 200 and code not in (204, 205, 304) else b""
        if body:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)


class _FrontServer(ThreadedWSGIServer):
    """One thread per connection, at most ``limits.max_connections`` of them (local/connections.py); refusals
    to a peer that keeps being refused are held in their connection's thread (local/tarpit.py)."""

    def __init__(
        self, host: str, port: int, app: LocalApi, limits: ConnectionLimits, tarpit: RefusalTarpit | None
    ) -> None:
        self.limits = limits
        self.tarpit = tarpit
        super().__init__(host, port, app, handler=_RequestHandler)
        self.cap = ConnectionCap(limits, serve=self._serve, refusal=lambda: _busy_answer(app.cors))

    def process_request(self, request: Any, client_address: Any) -> None:
        self.cap.admit(request, client_address)

    def _serve(self, request: Any, client_address: Any) -> None:
        super().process_request(request, client_address)  # starts the connection's thread

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.cap.release()

    def server_close(self) -> None:
        super().server_close()
        self.cap.close()


def _busy_answer(cors: Cors) -> bytes:
    """The fixed answer to a connection over the cap, as raw HTTP (it never reaches a handler)."""
    reply = http_error(503).reply(new_request_id(), cors)
    head = ["HTTP/1.1 503 Service Unavailable", "Connection: close", "Retry-After: 1"]
    head += [f"{name}: {value}" for name, value in reply.headers]
    head.append(f"Content-Length: {len(reply.body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body


class LocalServer:
    """The real handler behind ``LocalApi`` on a threaded Werkzeug server.

    ``deps`` are the function's collaborators (default: built from ``settings``); tests pass their own, e.g.
    a scripted analyzer. The handler's app is process-wide (as in Lambda), so run one server per process.
    ``workers`` > 1 (only with ``settings``, not ``deps``) runs the function in that many worker processes,
    each its own environment, so that requests are answered in parallel. ``tarpit`` holds the refusals to a
    peer past its allowance (``python -m local`` sets one; none by default, so tests are never held)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        deps: Dependencies | None = None,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        web_dir: Path | None = DEFAULT_WEB_DIR,
        workers: int = 1,
        limits: ConnectionLimits | None = None,
        tarpit: RefusalTarpit | None = None,
    ) -> None:
        if workers > 1 and deps is not None:
            raise ValueError("worker processes build their own collaborators: pass settings, not deps")
        if deps is None:
            deps = build_dependencies(settings or local_settings(data_dir=DEFAULT_DATA_DIR, port=port))
        self.deps = deps
        self.tarpit = tarpit
        self.workers = None if workers <= 1 else WorkerPool(deps.settings, workers)
        if self.workers is None:
            handler.use_dependencies(deps)
        self.api = LocalApi(
            routes=RouteTable(ROUTES),
            cors=Cors(deps.settings.allowed_origins),
            web_dir=web_dir,
            invoke=self.workers.invoke if self.workers else None,
            concurrent=self.workers is not None,
            settings=deps.settings,
        )
        try:
            self._server = _FrontServer(host, port, self.api, limits or ConnectionLimits(), tarpit)
        except BaseException:
            if self.workers:
                self.workers.close()
            raise
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self._server.host

    @property
    def port(self) -> int:
        return int(self._server.server_port)  # the real one when asked for port 0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def warm_up(self) -> None:
        """Load the analyzer's models now, so the first frame is as fast as the others."""
        if self.workers is not None:
            self.workers.warm_up()
            return
        warm = getattr(self.deps.analyzer, "warm_up", None)
        if callable(warm):
            warm()

    def serve_forever(self) -> None:
        """Serve in this thread until ``stop()`` or Ctrl-C; then close the socket (and stop the workers)."""
        try:
            self._server.serve_forever(poll_interval=_SHUTDOWN_POLL_SECONDS)
        finally:
            if self._thread is None and self.workers is not None:
                self.workers.close()

    def start(self) -> LocalServer:
        """Serve in a background thread (tests)."""
        self._thread = threading.Thread(target=self.serve_forever, name="local-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:  # never started (or serving in the caller's thread, which Ctrl-C ends)
            self._server.server_close()
            return
        self._server.shutdown()  # serve_forever returns and closes the socket
        self._thread.join(timeout=10)
        self._thread = None
        if self.workers is not None:
            self.workers.close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
