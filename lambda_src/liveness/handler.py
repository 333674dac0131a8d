"""The Lambda entry point: thin HTTP routes over the services, one error model, structured logs and metrics.

Logs carry the request id, sizes, face counts and latency, never the event body: it holds biometric data.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from .constants import METRICS_NAMESPACE
from .dependencies import Dependencies
from .detection import detect, detection_response
from .errors import ErrorCode, LivenessError
from .http import json_body_of, json_response, request_id_of
from .routes import ROUTES
from .sessions import routes as session_routes
from .settings import Settings
from .wiring import build_dependencies

SERVICE = "liveness"

logger = Logger(service=SERVICE)
# A rejected request emits only its error metric (a separate EMF record); that is expected, not a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)


def cors_config(settings: Settings) -> CORSConfig | None:
    """CORS only for the configured origins; credentials are never allowed."""
    if not settings.allowed_origins:
        return None
    first, *others = settings.allowed_origins
    return CORSConfig(allow_origin=first, extra_origins=others, max_age=600, expose_headers=["Retry-After"])


def create_app(deps: Dependencies) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(cors=cors_config(deps.settings))

    def request_id() -> str:
        return request_id_of(app.current_event, app.lambda_context)

    @app.post("/detect")
    def post_detect() -> dict[str, Any]:
        started = time.perf_counter()
        detection = detect(json_body_of(app.current_event, "detect_request"), deps, request_id())
        latency_ms = (time.perf_counter() - started) * 1000
        _record_detection(
            detection.frame.width, detection.frame.height, len(detection.upload), detection.face_count, latency_ms
        )
        return detection_response(detection, request_id())

    @app.exception_handler(LivenessError)
    def on_liveness_error(error: LivenessError) -> Response:
        return error_response(error, request_id())

    @app.not_found
    def on_not_found(_: Exception) -> Response:
        event = app.current_event
        if any(
            route.path_parameters and (route.method, route.resource) == (event.http_method, event.resource)
            for route in ROUTES
        ):
            # API Gateway matched the route, but the id holds characters the resolver's pattern refuses (a quote,
            # "?", an emoji): an invalid id, 400 like every other malformed id, not a missing route.
            error = LivenessError(ErrorCode.INVALID_REQUEST, "The session id must be a UUID.")
            return error_response(error, request_id())
        return error_response(LivenessError(ErrorCode.NOT_FOUND, "No such route."), request_id())

    @app.exception_handler(Exception)
    def on_bug(_: Exception) -> Response:
        logger.exception("Unhandled error")  # the traceback goes to our logs, never to the client
        return error_response(LivenessError(ErrorCode.INTERNAL_ERROR, "Internal error."), request_id())

    app.include_router(session_routes.build_router(deps))
    return app


def error_response(error: LivenessError, request_id: str) -> Response:
    _count_error(error.code)
    logger.info("Request rejected", extra={"code": error.code.value, "status": error.status})
    return json_response(error.status, error.body(request_id), error.headers())


def _record_detection(width: int, height: int, size_bytes: int, face_count: int, latency_ms: float) -> None:
    logger.info(
        "Frame analysed",
        extra={
            "width": width,
            "height": height,
            "bytes": size_bytes,
            "faces": face_count,
            "latencyMs": round(latency_ms, 1),
        },
    )
    metrics.add_metric(name="FacesDetected", unit=MetricUnit.Count, value=face_count)
    metrics.add_metric(name="DetectLatency", unit=MetricUnit.Milliseconds, value=latency_ms)


def _count_error(code: ErrorCode) -> None:
    with single_metric(name="Errors", unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE) as metric:
        metric.add_dimension(name="code", value=code.value)


_app: APIGatewayRestResolver | None = None
_deps: Dependencies | None = None


def use_dependencies(deps: Dependencies) -> None:
    """Swap the collaborators (tests, local server)."""
    global _app, _deps
    _app = create_app(deps)
    _deps = deps


def current_dependencies() -> Dependencies | None:
    """The collaborators in use; None until the first request or ``prepare()``."""
    return _deps


def is_prepared() -> bool:
    return _app is not None


def _current_app() -> APIGatewayRestResolver:
    if _app is None:
        use_dependencies(build_dependencies(Settings.from_env()))
    assert _app is not None
    return _app


def prepare() -> None:
    """The expensive start: build the clients (boto3 loads each service's model), load the embedded analyzer's
    models when configured, and run numpy and OpenCV once (their first decode and encode load codecs and
    allocate), so that the first request does none of it."""
    deps = build_dependencies(Settings.from_env())
    for analyzer in (deps.analyzer, deps.prescreen):  # the pre-screen's models too (PRESCREEN=on)
        warm_up = getattr(analyzer, "warm_up", None)
        if callable(warm_up):
            warm_up()
    warm_image_code()
    use_dependencies(deps)


def warm_image_code() -> None:
    import cv2
    import numpy as np

    from .images.crop import encode_jpeg

    blank = np.zeros((96, 128, 3), np.uint8)
    cv2.imdecode(np.frombuffer(encode_jpeg(blank), np.uint8), cv2.IMREAD_COLOR)
    cv2.imdecode(cv2.imencode(".png", blank)[1], cv2.IMREAD_COLOR)


def refresh_after_restore() -> None:
    """After a SnapStart restore: every environment restored from one snapshot would otherwise share what was
    captured in it. The clients are built again from a fresh boto3 session, so they resolve credentials anew and
    open their own connections (a pooled connection of the snapshot is long dead); the service models already
    loaded are reused. The embedded analyzer's models are kept (read-only weights), the pre-screen's too.
    Nothing else needs it: every id and every step draw comes from the OS's CSPRNG (``uuid4``, ``secrets``),
    which the restore reseeds, and no ``random`` or numpy generator is used."""
    if _app is None or _deps is None:
        prepare()
        return
    from .wiring import fresh_aws_session

    keep = _deps.analyzer if _deps.settings.analyzer == "local" else None
    fresh = build_dependencies(_deps.settings, aws=fresh_aws_session(), analyzer=keep, prescreen=_deps.prescreen)
    use_dependencies(fresh)


def _prepare_during_init() -> None:
    """In Lambda, do the expensive start before the first request: at init (which runs at full CPU), or, with
    SnapStart, in the before-snapshot runtime hook, so that it is done once per published version and every
    environment restored from the snapshot starts warm; the after-restore hook then refreshes what must be
    unique per environment."""
    if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return  # tests and the local server wire their own dependencies
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
        # Provided by Lambda's Python runtimes (3.12 and later).
        from snapshot_restore_py import register_after_restore, register_before_snapshot

        register_before_snapshot(prepare)
        register_after_restore(refresh_after_restore)
        return
    prepare()


_prepare_during_init()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _current_app().resolve(event, context)
